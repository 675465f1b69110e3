package config

import (
	"fmt"
	"strconv"
	"strings"
)

// lineIndex maps dotted keys to the line where the file writes them. The
// TOML library keeps key positions private, so indexLines scans the
// (already syntax-checked) file itself: table headers, [[array]] headers
// and "key = value" lines, skipping comments and multi-line strings.
type lineIndex map[string]lineEntry

type lineEntry struct {
	line int
	// value is true for "key = value" lines, false for [table] headers
	// and tables implied by dotted keys.
	value bool
}

// lineOf returns the line of key, or of the "key = value" line whose
// inline value contains it (an inline table or array), or 0.
func (x lineIndex) lineOf(key string) int {
	if e, ok := x[key]; ok {
		return e.line
	}
	for k := parentKey(key); k != ""; k = parentKey(k) {
		if e, ok := x[k]; ok {
			if e.value {
				return e.line
			}
			return 0
		}
	}
	return 0
}

// parentKey drops the last segment of a key: "a.b[1]" -> "a.b" -> "a" -> "".
func parentKey(key string) string {
	if strings.HasSuffix(key, "]") {
		if i := strings.LastIndexByte(key, '['); i > 0 {
			return key[:i]
		}
	}
	// The last dot outside quotes.
	last, inQuote := -1, false
	for i := 0; i < len(key); i++ {
		switch key[i] {
		case '\\':
			if inQuote {
				i++
			}
		case '"':
			inQuote = !inQuote
		case '.':
			if !inQuote {
				last = i
			}
		}
	}
	if last < 0 {
		return ""
	}
	return key[:last]
}

// joinKey appends one key segment, quoting it unless it is a bare key.
func joinKey(prefix, seg string) string {
	if !isBare(seg) {
		seg = strconv.Quote(seg)
	}
	if prefix == "" {
		return seg
	}
	return prefix + "." + seg
}

func isBare(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isBareChar(s[i]) {
			return false
		}
	}
	return true
}

func isBareChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

func indexLines(data string) lineIndex {
	x := lineIndex{}
	record := func(key string, line int, value bool) {
		if _, ok := x[key]; !ok {
			x[key] = lineEntry{line: line, value: value}
		}
	}
	aot := map[string]int{} // [[array]] path -> tables seen so far
	table := ""             // current table, with array indices
	inString := ""          // closing delimiter of the multi-line string we are in
	for i, line := range strings.Split(data, "\n") {
		n := i + 1
		if inString != "" {
			if strings.Contains(line, inString) {
				inString = ""
			}
			continue
		}
		s := strings.TrimSpace(line)
		if s == "" || s[0] == '#' {
			continue
		}
		if strings.HasPrefix(s, "[[") {
			segs, _, ok := parseKeyPath(s[2:], ']')
			if !ok {
				continue
			}
			p := withIndices(segs, aot)
			table = fmt.Sprintf("%s[%d]", p, aot[p])
			aot[p]++
			record(p, n, false)
			record(table, n, false)
			continue
		}
		if s[0] == '[' {
			segs, _, ok := parseKeyPath(s[1:], ']')
			if !ok {
				continue
			}
			table = withIndices(segs, aot)
			record(table, n, false)
			continue
		}
		segs, rest, ok := parseKeyPath(s, '=')
		if !ok {
			continue
		}
		key := table
		for j, seg := range segs {
			key = joinKey(key, seg)
			record(key, n, j == len(segs)-1)
		}
		v := strings.TrimSpace(rest)
		for _, delim := range []string{`"""`, `'''`} {
			if strings.HasPrefix(v, delim) && !strings.Contains(v[3:], delim) {
				inString = delim
			}
		}
	}
	return x
}

// withIndices joins header segments, giving each prefix that names an
// array of tables the index of its latest table, so that
// [telegram.dc_options.x] after [[telegram.dc_options]] maps to
// telegram.dc_options[0].x.
func withIndices(segs []string, aot map[string]int) string {
	key := ""
	for j, seg := range segs {
		key = joinKey(key, seg)
		if n, ok := aot[key]; ok && n > 0 && j < len(segs)-1 {
			key = fmt.Sprintf("%s[%d]", key, n-1)
		}
	}
	return key
}

// parseKeyPath reads a dotted key up to the terminator byte and returns
// its segments and what follows the terminator.
func parseKeyPath(s string, term byte) (segs []string, rest string, ok bool) {
	i := 0
	skip := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
	}
	for {
		skip()
		if i >= len(s) {
			return nil, "", false
		}
		var seg string
		switch s[i] {
		case '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return nil, "", false
			}
			u, err := strconv.Unquote(s[i : j+1])
			if err != nil {
				u = s[i+1 : j]
			}
			seg, i = u, j+1
		case '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, "", false
			}
			seg, i = s[i+1:i+1+j], i+j+2
		default:
			j := i
			for j < len(s) && isBareChar(s[j]) {
				j++
			}
			if j == i {
				return nil, "", false
			}
			seg, i = s[i:j], j
		}
		segs = append(segs, seg)
		skip()
		if i >= len(s) {
			return nil, "", false
		}
		switch s[i] {
		case '.':
			i++
		case term:
			return segs, s[i+1:], true
		default:
			return nil, "", false
		}
	}
}
