package calld

// LoginStep is the body of POST /v1/login: at most one field is set. An
// empty step asks for the current state without changing anything.
type LoginStep struct {
	Phone    string `json:"phone,omitempty"`
	Code     string `json:"code,omitempty"`
	Password string `json:"password,omitempty"`
}

// Login states (LoginState.State).
const (
	LoginPhoneNeeded    = "phone_needed"    // send {"phone": "+..."}
	LoginCodeSent       = "code_sent"       // send {"code": "..."}
	LoginPasswordNeeded = "password_needed" // send {"password": "..."} (2FA)
	LoginAuthorized     = "authorized"      // done
)

// LoginState is the answer to every login step.
type LoginState struct {
	State string `json:"state"`
	// Phone is the phone number the code was sent to, masked.
	Phone string `json:"phone,omitempty"`
	// CodeVia says where the code went (app, sms, call, ...), if known.
	CodeVia string `json:"code_via,omitempty"`
	// PasswordHint is the 2FA password hint, if any.
	PasswordHint string `json:"password_hint,omitempty"`
	// SelfID is the logged-in user's id once authorized.
	SelfID int64 `json:"self_id,string,omitempty"`
}
