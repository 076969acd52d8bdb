package smartsheet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// ValueKind says which JSON type a cell value has.
type ValueKind uint8

// The kinds a Smartsheet cell value can take.
const (
	KindNone   ValueKind = iota // absent: the cell is empty
	KindString                  // a JSON string
	KindNumber                  // a JSON number, kept as its exact text
	KindBool                    // a JSON boolean
	KindObject                  // a JSON object or array (objectValue-like), kept raw
)

// String names the kind.
func (k ValueKind) String() string {
	switch k {
	case KindString:
		return "string"
	case KindNumber:
		return "number"
	case KindBool:
		return "bool"
	case KindObject:
		return "object"
	default:
		return "none"
	}
}

// Value is a cell value: a string, a number or a boolean (rarely an object).
// Numbers keep their exact JSON text, so money never goes through float64.
// The zero Value is absent and is omitted from JSON (`omitzero`).
type Value struct {
	kind ValueKind
	text string // the string, the number's JSON text, or the raw object
	b    bool
}

// StringValue returns a string cell value. An empty string is kept: the API uses
// `"value": ""` to clear a cell.
func StringValue(s string) Value { return Value{kind: KindString, text: s} }

// NumberValue returns a number cell value from its decimal text (e.g. "1234.50").
// It panics if s is not a valid JSON number; use ParseNumberValue for untrusted input.
func NumberValue(s string) Value {
	v, err := ParseNumberValue(s)
	if err != nil {
		panic(err)
	}
	return v
}

// ParseNumberValue returns a number cell value, or an error if s is not a JSON number.
func ParseNumberValue(s string) (Value, error) {
	if !isJSONNumber(s) {
		return Value{}, fmt.Errorf("smartsheet: %q is not a number", s)
	}
	return Value{kind: KindNumber, text: s}, nil
}

// IntValue returns a number cell value holding an integer.
func IntValue(i int64) Value { return Value{kind: KindNumber, text: strconv.FormatInt(i, 10)} }

// BoolValue returns a boolean cell value.
func BoolValue(b bool) Value { return Value{kind: KindBool, b: b} }

// Kind reports the JSON type of the value.
func (v Value) Kind() ValueKind { return v.kind }

// IsZero reports whether the value is absent (used by `omitzero`).
func (v Value) IsZero() bool { return v.kind == KindNone }

// Text returns the value as text: the string itself, the number's exact JSON
// text, "true"/"false", or the raw JSON of an object. Absent values give "".
func (v Value) Text() string {
	switch v.kind {
	case KindBool:
		return strconv.FormatBool(v.b)
	default:
		return v.text
	}
}

// Bool returns the boolean and whether the value is a boolean.
func (v Value) Bool() (bool, bool) { return v.b, v.kind == KindBool }

// Equal reports whether two values are the same JSON value. Numbers compare by
// their exact text; the audit domain compares amounts as decimals.
func (v Value) Equal(o Value) bool {
	if v.kind != o.kind {
		return false
	}
	if v.kind == KindBool {
		return v.b == o.b
	}
	return v.text == o.text
}

// String is for debugging and logs.
func (v Value) String() string { return v.Text() }

// MarshalJSON writes the value as its JSON type.
func (v Value) MarshalJSON() ([]byte, error) {
	switch v.kind {
	case KindNone:
		return []byte("null"), nil
	case KindString:
		return json.Marshal(v.text)
	case KindNumber:
		return []byte(v.text), nil
	case KindBool:
		if v.b {
			return []byte("true"), nil
		}
		return []byte("false"), nil
	default:
		return []byte(v.text), nil
	}
}

// UnmarshalJSON reads any JSON value without converting numbers to float64.
func (v *Value) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return fmt.Errorf("smartsheet: empty cell value")
	}
	switch data[0] {
	case 'n':
		*v = Value{}
	case 't':
		*v = Value{kind: KindBool, b: true}
	case 'f':
		*v = Value{kind: KindBool, b: false}
	case '"':
		// Fast path: no escapes.
		if bytes.IndexByte(data[1:len(data)-1], '\\') < 0 {
			*v = Value{kind: KindString, text: string(data[1 : len(data)-1])}
			return nil
		}
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		*v = Value{kind: KindString, text: s}
	case '{', '[':
		*v = Value{kind: KindObject, text: string(data)}
	default:
		*v = Value{kind: KindNumber, text: string(data)}
	}
	return nil
}

func isJSONNumber(s string) bool {
	if s == "" {
		return false
	}
	return json.Valid([]byte(s)) && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9'))
}
