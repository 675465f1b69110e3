package calld

import "time"

// TimeLayout is how the control API, the journal and the call records
// write times: RFC 3339 in UTC with nanoseconds, always with the fraction
// (CONTRACT §3 asks for fractional seconds; time.Time's own JSON drops a
// zero fraction).
const TimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// Time is a time.Time that marshals with TimeLayout, in UTC. It decodes
// any RFC 3339 time.
type Time time.Time

// MarshalText implements encoding.TextMarshaler.
func (t Time) MarshalText() ([]byte, error) {
	return []byte(time.Time(t).UTC().Format(TimeLayout)), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (t *Time) UnmarshalText(b []byte) error {
	var v time.Time
	if err := v.UnmarshalText(b); err != nil {
		return err
	}
	*t = Time(v)
	return nil
}

// TimePtr converts an optional time for marshalling (nil stays nil).
func TimePtr(t *time.Time) *Time {
	if t == nil {
		return nil
	}
	v := Time(*t)
	return &v
}
