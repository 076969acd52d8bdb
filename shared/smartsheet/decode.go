package smartsheet

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// DecodeSheet decodes a GET /sheets/{id} answer into s. It gives the same
// result as json.Unmarshal but about twice as fast: rows and cells, which
// are nearly all of a sheet, are parsed by hand, and every other field (or a
// field added to the model later) goes through encoding/json by its tag.
func DecodeSheet(data []byte, s *Sheet) error {
	d := decoder{data: data}
	if err := d.sheet(s); err != nil {
		return err
	}
	d.ws()
	if d.pos != len(d.data) {
		return d.errorf("unexpected data after the sheet")
	}
	return nil
}

// sheetTarget makes the client decode a sheet answer with DecodeSheet.
type sheetTarget struct{ s *Sheet }

func (t sheetTarget) decodeJSON(data []byte) error { return DecodeSheet(data, t.s) }

// fastDecoder is a call target with its own decoder.
type fastDecoder interface{ decodeJSON([]byte) error }

type decoder struct {
	data []byte
	pos  int
	// slabs hand out *time.Time and *bool without one allocation each.
	times []time.Time
	bools []bool
	cells int // cells of the previous row: capacity hint
}

func (d *decoder) errorf(format string, args ...any) error {
	return fmt.Errorf("smartsheet: decode sheet: offset %d: %s", d.pos, fmt.Sprintf(format, args...))
}

func (d *decoder) ws() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

func (d *decoder) peek() byte {
	d.ws()
	if d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}

// begin consumes open ('{' or '[') and reports whether a member follows.
func (d *decoder) begin(open, close byte) (bool, error) {
	if d.peek() != open {
		return false, d.errorf("expected %q", open)
	}
	d.pos++
	if d.peek() == close {
		d.pos++
		return false, nil
	}
	return true, nil
}

// more consumes ',' (true) or close (false) after a member.
func (d *decoder) more(close byte) (bool, error) {
	switch d.peek() {
	case ',':
		d.pos++
		return true, nil
	case close:
		d.pos++
		return false, nil
	}
	return false, d.errorf("expected ',' or %q", close)
}

// key reads an object key and its ':'. The key aliases the input unless it
// had escapes; callers switch on string(key), which does not allocate.
func (d *decoder) key() ([]byte, error) {
	if d.peek() != '"' {
		return nil, d.errorf("expected a key")
	}
	raw, _, slow, err := d.rawString()
	if err != nil {
		return nil, err
	}
	if slow {
		s, err := d.unquote(raw)
		if err != nil {
			return nil, err
		}
		raw = []byte(s)
	}
	if d.peek() != ':' {
		return nil, d.errorf("expected ':'")
	}
	d.pos++
	d.ws()
	return raw, nil
}

// rawString scans a string at d.pos and returns its contents and whether it
// needs the slow path (escapes or non-ASCII to validate).
func (d *decoder) rawString() (raw []byte, start int, slow bool, err error) {
	start = d.pos
	i := d.pos + 1
	for i < len(d.data) {
		c := d.data[i]
		switch {
		case c == '"':
			d.pos = i + 1
			return d.data[start+1 : i], start, slow, nil
		case c == '\\':
			slow = true
			i += 2
			continue
		case c < 0x20:
			d.pos = i
			return nil, start, false, d.errorf("control character in string")
		case c >= utf8.RuneSelf:
			slow = true
		}
		i++
	}
	return nil, start, false, d.errorf("unterminated string")
}

// str reads a JSON string like encoding/json (escapes, invalid UTF-8 → U+FFFD).
func (d *decoder) str() (string, error) {
	raw, _, slow, err := d.rawString()
	if err != nil {
		return "", err
	}
	if !slow {
		return string(raw), nil
	}
	return d.unquote(raw)
}

// unquote decodes the contents of a string with escapes or non-ASCII bytes.
func (d *decoder) unquote(raw []byte) (string, error) {
	if !utf8.Valid(raw) {
		// Rare: let encoding/json apply its exact replacement rules.
		var s string
		if err := json.Unmarshal(append(append([]byte{'"'}, raw...), '"'), &s); err != nil {
			return "", d.errorf("%v", err)
		}
		return s, nil
	}
	if !containsByte(raw, '\\') {
		return string(raw), nil
	}
	b := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			b = append(b, c)
			continue
		}
		i++
		if i >= len(raw) {
			return "", d.errorf("invalid escape")
		}
		switch raw[i] {
		case '"', '\\', '/':
			b = append(b, raw[i])
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := hex4(raw[i+1:])
			if !ok {
				return "", d.errorf("invalid \\u escape")
			}
			i += 4
			if utf16.IsSurrogate(r) {
				r2, ok2 := rune(0), false
				if i+2 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
					r2, ok2 = hex4(raw[i+3:])
				}
				if dec := utf16.DecodeRune(r, r2); ok2 && dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			b = utf8.AppendRune(b, r)
		default:
			return "", d.errorf("invalid escape")
		}
	}
	return string(b), nil
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r*16 + rune(c)
	}
	return r, true
}

func containsByte(b []byte, c byte) bool {
	for _, x := range b {
		if x == c {
			return true
		}
	}
	return false
}

// number scans a JSON number and returns its text.
func (d *decoder) number() ([]byte, error) {
	start, i, n := d.pos, d.pos, len(d.data)
	if i < n && d.data[i] == '-' {
		i++
	}
	digits := func() int {
		j := i
		for i < n && d.data[i] >= '0' && d.data[i] <= '9' {
			i++
		}
		return i - j
	}
	switch {
	case i < n && d.data[i] == '0':
		i++
	case digits() == 0:
		return nil, d.errorf("invalid number")
	}
	if i < n && d.data[i] == '.' {
		i++
		if digits() == 0 {
			return nil, d.errorf("invalid number")
		}
	}
	if i < n && (d.data[i] == 'e' || d.data[i] == 'E') {
		i++
		if i < n && (d.data[i] == '+' || d.data[i] == '-') {
			i++
		}
		if digits() == 0 {
			return nil, d.errorf("invalid number")
		}
	}
	d.pos = i
	return d.data[start:i], nil
}

func (d *decoder) literal(lit string) error {
	if len(d.data)-d.pos < len(lit) || string(d.data[d.pos:d.pos+len(lit)]) != lit {
		return d.errorf("invalid literal")
	}
	d.pos += len(lit)
	return nil
}

// isNull consumes a null and reports whether there was one.
func (d *decoder) isNull() (bool, error) {
	if d.peek() != 'n' {
		return false, nil
	}
	return true, d.literal("null")
}

func (d *decoder) int64() (int64, error) {
	if null, err := d.isNull(); null || err != nil {
		return 0, err
	}
	tok, err := d.number()
	if err != nil {
		return 0, err
	}
	var v int64
	neg := tok[0] == '-'
	digits := tok
	if neg {
		digits = tok[1:]
	}
	if len(digits) > 18 {
		return strconv.ParseInt(string(tok), 10, 64)
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, d.errorf("cannot decode number %s into an integer", tok)
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v, nil
}

func (d *decoder) int() (int, error) {
	v, err := d.int64()
	return int(v), err
}

func (d *decoder) boolean() (b, null bool, err error) {
	switch d.peek() {
	case 't':
		return true, false, d.literal("true")
	case 'f':
		return false, false, d.literal("false")
	case 'n':
		return false, true, d.literal("null")
	}
	return false, false, d.errorf("expected a boolean")
}

func (d *decoder) boolPtr() (*bool, error) {
	b, null, err := d.boolean()
	if err != nil || null {
		return nil, err
	}
	if len(d.bools) == 0 {
		d.bools = make([]bool, 512)
	}
	p := &d.bools[0]
	d.bools = d.bools[1:]
	*p = b
	return p, nil
}

func (d *decoder) stringField() (string, error) {
	if null, err := d.isNull(); null || err != nil {
		return "", err
	}
	if d.peek() != '"' {
		return "", d.errorf("expected a string")
	}
	return d.str()
}

// timePtr reads an RFC 3339 time; the common "2006-01-02T15:04:05Z" form
// is parsed without time.Parse.
func (d *decoder) timePtr() (*time.Time, error) {
	if null, err := d.isNull(); null || err != nil {
		return nil, err
	}
	if d.peek() != '"' {
		return nil, d.errorf("expected a time string")
	}
	raw, start, slow, err := d.rawString()
	if err != nil {
		return nil, err
	}
	t, ok := parseUTCSeconds(raw)
	if !ok || slow {
		if err := t.UnmarshalJSON(d.data[start:d.pos]); err != nil {
			return nil, d.errorf("%v", err)
		}
	}
	if len(d.times) == 0 {
		d.times = make([]time.Time, 256)
	}
	p := &d.times[0]
	d.times = d.times[1:]
	*p = t
	return p, nil
}

func parseUTCSeconds(b []byte) (time.Time, bool) {
	if len(b) != 20 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' || b[19] != 'Z' {
		return time.Time{}, false
	}
	num := func(i, n int) (int, bool) {
		v := 0
		for _, c := range b[i : i+n] {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	y, ok1 := num(0, 4)
	mo, ok2 := num(5, 2)
	dd, ok3 := num(8, 2)
	h, ok4 := num(11, 2)
	mi, ok5 := num(14, 2)
	s, ok6 := num(17, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mo < 1 || mo > 12 || dd < 1 || dd > 31 || h > 23 || mi > 59 || s > 59 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), dd, h, mi, s, 0, time.UTC)
	if t.Day() != dd { // e.g. 02-30: let time.Parse report it
		return time.Time{}, false
	}
	return t, true
}

// value reads a cell value like Value.UnmarshalJSON.
func (d *decoder) value() (Value, error) {
	switch c := d.peek(); {
	case c == '"':
		// Like Value.UnmarshalJSON: text without escapes is kept byte for byte.
		raw, _, slow, err := d.rawString()
		if err != nil {
			return Value{}, err
		}
		if !slow || !containsByte(raw, '\\') {
			return Value{kind: KindString, text: string(raw)}, nil
		}
		s, err := d.unquote(raw)
		return Value{kind: KindString, text: s}, err
	case c == 't' || c == 'f':
		b, _, err := d.boolean()
		return Value{kind: KindBool, b: b}, err
	case c == 'n':
		return Value{}, d.literal("null")
	case c == '{' || c == '[':
		raw, err := d.skip()
		return Value{kind: KindObject, text: string(raw)}, err
	default:
		tok, err := d.number()
		return Value{kind: KindNumber, text: string(tok)}, err
	}
}

// skip passes over one value and returns its raw text.
func (d *decoder) skip() ([]byte, error) {
	d.ws()
	start := d.pos
	if d.pos >= len(d.data) {
		return nil, d.errorf("unexpected end of input")
	}
	var err error
	switch c := d.data[d.pos]; {
	case c == '"':
		_, _, _, err = d.rawString()
	case c == '{' || c == '[':
		close := byte('}')
		if c == '[' {
			close = ']'
		}
		more, e := d.begin(c, close)
		for err = e; more && err == nil; more, err = d.more(close) {
			if c == '{' {
				if _, err = d.key(); err != nil {
					break
				}
			}
			_, err = d.skip()
			if err != nil {
				break
			}
		}
	case c == 't':
		err = d.literal("true")
	case c == 'f':
		err = d.literal("false")
	case c == 'n':
		err = d.literal("null")
	default:
		_, err = d.number()
	}
	if err != nil {
		return nil, err
	}
	raw := d.data[start:d.pos]
	if containsByte(raw, '\\') {
		// Validate escapes the way encoding/json would.
		if !json.Valid(raw) {
			return nil, d.errorf("invalid JSON value")
		}
	}
	return raw, nil
}

// fallback decodes the value of key into the field of v (a struct pointer)
// with that JSON name, matching case-insensitively like encoding/json, or
// skips the value if there is no such field.
func (d *decoder) fallback(v any, key string) error {
	raw, err := d.skip()
	if err != nil {
		return err
	}
	rv := reflect.ValueOf(v).Elem()
	idx, ok := fieldIndex(rv.Type(), key)
	if !ok {
		return nil
	}
	if err := json.Unmarshal(raw, rv.Field(idx).Addr().Interface()); err != nil {
		return d.errorf("field %q: %v", key, err)
	}
	return nil
}

type jsonField struct {
	name  string
	index int
}

var fieldCache sync.Map // reflect.Type → []jsonField

func fieldIndex(t reflect.Type, key string) (int, bool) {
	var fields []jsonField
	if f, ok := fieldCache.Load(t); ok {
		fields = f.([]jsonField)
	} else {
		for i := range t.NumField() {
			sf := t.Field(i)
			if !sf.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = sf.Name
			}
			fields = append(fields, jsonField{name, i})
		}
		fieldCache.Store(t, fields)
	}
	for _, f := range fields {
		if f.name == key {
			return f.index, true
		}
	}
	for _, f := range fields {
		if strings.EqualFold(f.name, key) {
			return f.index, true
		}
	}
	return 0, false
}

func (d *decoder) sheet(s *Sheet) error {
	if null, err := d.isNull(); null || err != nil {
		return err
	}
	more, err := d.begin('{', '}')
	for ; more && err == nil; more, err = d.more('}') {
		var k []byte
		if k, err = d.key(); err != nil {
			return err
		}
		switch string(k) {
		case "rows":
			err = d.rows(&s.Rows, len(s.Columns))
		case "id":
			s.ID, err = d.int64()
		case "version":
			s.Version, err = d.int64()
		case "name":
			s.Name, err = d.stringField()
		default:
			err = d.fallback(s, string(k))
		}
		if err != nil {
			return err
		}
	}
	return err
}

func (d *decoder) rows(rows *[]Row, columns int) error {
	if null, err := d.isNull(); null || err != nil {
		*rows = nil
		return err
	}
	d.cells = columns
	out := (*rows)[:0]
	more, err := d.begin('[', ']')
	for ; more && err == nil; more, err = d.more(']') {
		// Like encoding/json, reuse (without zeroing) elements within capacity.
		if len(out) < cap(out) {
			out = out[:len(out)+1]
		} else {
			out = append(out, Row{})
		}
		if err = d.row(&out[len(out)-1]); err != nil {
			return err
		}
	}
	if out == nil && err == nil {
		out = []Row{}
	}
	*rows = out
	return err
}

func (d *decoder) row(r *Row) error {
	if null, err := d.isNull(); null || err != nil {
		return err
	}
	more, err := d.begin('{', '}')
	for ; more && err == nil; more, err = d.more('}') {
		var k []byte
		if k, err = d.key(); err != nil {
			return err
		}
		switch string(k) {
		case "id":
			r.ID, err = d.int64()
		case "sheetId":
			r.SheetID, err = d.int64()
		case "rowNumber":
			r.RowNumber, err = d.int()
		case "version":
			r.Version, err = d.int64()
		case "siblingId":
			r.SiblingID, err = d.int64()
		case "parentId":
			r.ParentID, err = d.int64()
		case "expanded":
			r.Expanded, err = d.boolPtr()
		case "locked":
			r.Locked, err = d.boolPtr()
		case "createdAt":
			r.CreatedAt, err = d.timePtr()
		case "modifiedAt":
			r.ModifiedAt, err = d.timePtr()
		case "createdBy":
			r.CreatedBy, err = d.user()
		case "modifiedBy":
			r.ModifiedBy, err = d.user()
		case "permalink", "permaLink":
			r.Permalink, err = d.stringField()
		case "format":
			r.Format, err = d.stringField()
		case "cells":
			err = d.cellList(&r.Cells)
		default:
			err = d.fallback(r, string(k))
		}
		if err != nil {
			return err
		}
	}
	return err
}

func (d *decoder) user() (*User, error) {
	if null, err := d.isNull(); null || err != nil {
		return nil, err
	}
	u := &User{}
	more, err := d.begin('{', '}')
	for ; more && err == nil; more, err = d.more('}') {
		var k []byte
		if k, err = d.key(); err != nil {
			return nil, err
		}
		switch string(k) {
		case "name":
			u.Name, err = d.stringField()
		case "email":
			u.Email, err = d.stringField()
		default:
			err = d.fallback(u, string(k))
		}
		if err != nil {
			return nil, err
		}
	}
	return u, err
}

func (d *decoder) cellList(cells *[]Cell) error {
	if null, err := d.isNull(); null || err != nil {
		*cells = nil
		return err
	}
	out := *cells
	if out == nil && d.cells > 0 {
		out = make([]Cell, 0, d.cells)
	}
	out = out[:0]
	more, err := d.begin('[', ']')
	for ; more && err == nil; more, err = d.more(']') {
		if len(out) < cap(out) {
			out = out[:len(out)+1]
		} else {
			out = append(out, Cell{})
		}
		if err = d.cell(&out[len(out)-1]); err != nil {
			return err
		}
	}
	if out == nil && err == nil {
		out = []Cell{}
	}
	if len(out) > d.cells {
		d.cells = len(out)
	}
	*cells = out
	return err
}

func (d *decoder) cell(c *Cell) error {
	if null, err := d.isNull(); null || err != nil {
		return err
	}
	more, err := d.begin('{', '}')
	for ; more && err == nil; more, err = d.more('}') {
		var k []byte
		if k, err = d.key(); err != nil {
			return err
		}
		switch string(k) {
		case "columnId":
			c.ColumnID, err = d.int64()
		case "value":
			c.Value, err = d.value()
		case "displayValue":
			c.DisplayValue, err = d.stringField()
		case "formula":
			c.Formula, err = d.stringField()
		case "format":
			c.Format, err = d.stringField()
		case "columnType":
			c.ColumnType, err = d.stringField()
		default:
			err = d.fallback(c, string(k))
		}
		if err != nil {
			return err
		}
	}
	return err
}
