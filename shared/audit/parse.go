package audit

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// maxExponent bounds the exponent accepted in numbers such as "1.0E7" (which
// the Smartsheet API may emit for large numbers), so a hostile cell cannot
// ask for a decimal with a billion digits.
const maxExponent = 30

// ParseMoney parses an amount written as a number or as text: "1234.5",
// "$1,234.56", "-$5.00", "$-5.00", "(12.50)" (−12.50), " 1,000 ", "1.5E3".
// Thousands separators must group by three. A blank cell gives ok=false and
// no error: blank is absent, never zero. Anything else (e.g. "$1,2O0") is an
// error naming the raw text.
func ParseMoney(raw string) (d decimal.Decimal, ok bool, err error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return decimal.Decimal{}, false, nil
	}
	paren := false
	if len(s) >= 2 && s[0] == '(' && s[len(s)-1] == ')' {
		paren = true
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = strings.TrimSpace(s[1:])
	}
	if strings.HasPrefix(s, "$") {
		s = strings.TrimSpace(s[1:])
		if s != "" && (s[0] == '-' || s[0] == '+') && !neg {
			neg = s[0] == '-'
			s = s[1:]
		}
	}
	d, rest, err := parseNumber(s)
	if err == nil && rest != "" {
		err = fmt.Errorf("unexpected %q", rest)
	}
	if err == nil && paren && neg {
		err = errors.New("both parentheses and a minus sign")
	}
	if err != nil {
		return decimal.Decimal{}, false, fmt.Errorf("money %q: %w", raw, err)
	}
	if neg != paren { // exactly one of them
		d = d.Neg()
	}
	return d, true, nil
}

// ParseQuantity parses a quantity written as a number, optionally followed by
// a unit made of letters: "3", "2.5", "3 EA", "10LF", "1,200 ft", "-1".
// A blank cell gives ok=false and no error.
func ParseQuantity(raw string) (d decimal.Decimal, ok bool, err error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return decimal.Decimal{}, false, nil
	}
	neg := false
	if s[0] == '-' || s[0] == '+' {
		neg = s[0] == '-'
		s = s[1:]
	}
	d, rest, err := parseNumber(s)
	if err == nil {
		unit := strings.TrimSpace(rest)
		if len(unit) > 16 || !isLetters(strings.TrimSuffix(unit, ".")) {
			err = fmt.Errorf("unexpected %q after the number", rest)
		}
	}
	if err != nil {
		return decimal.Decimal{}, false, fmt.Errorf("quantity %q: %w", raw, err)
	}
	if neg {
		d = d.Neg()
	}
	return d, true, nil
}

func isLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// parseNumber reads an unsigned decimal at the start of s: digits with
// optional comma grouping by three, an optional fraction, an optional bounded
// exponent (only without grouping). It returns the unparsed rest.
func parseNumber(s string) (decimal.Decimal, string, error) {
	var clean []byte
	i := 0
	grouped := false
	groupLen := 0 // digits since the last comma, or in the first group
	intDigits := 0
	for i < len(s) {
		c := s[i]
		if isDigit(c) {
			clean = append(clean, c)
			groupLen++
			intDigits++
			i++
			continue
		}
		if c == ',' && i+1 < len(s) && isDigit(s[i+1]) && intDigits > 0 {
			if (!grouped && groupLen > 3) || (grouped && groupLen != 3) {
				return decimal.Decimal{}, "", errors.New("misplaced thousands separator")
			}
			grouped = true
			groupLen = 0
			i++
			continue
		}
		break
	}
	if grouped && groupLen != 3 {
		return decimal.Decimal{}, "", errors.New("misplaced thousands separator")
	}
	fracDigits := 0
	if i < len(s) && s[i] == '.' {
		clean = append(clean, '.')
		i++
		for i < len(s) && isDigit(s[i]) {
			clean = append(clean, s[i])
			fracDigits++
			i++
		}
	}
	if intDigits+fracDigits == 0 {
		return decimal.Decimal{}, "", errors.New("no digits")
	}
	if !grouped && i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		k := j
		for k < len(s) && isDigit(s[k]) {
			k++
		}
		if k > j { // an exponent, not a unit such as "EA"
			exp := strings.TrimLeft(s[j:k], "0")
			if n, _ := strconv.Atoi(exp); len(exp) > 3 || n > maxExponent {
				return decimal.Decimal{}, "", fmt.Errorf("exponent beyond ±%d", maxExponent)
			}
			clean = append(clean, s[i:k]...)
			i = k
		}
	}
	d, err := decimal.NewFromString(string(clean))
	if err != nil {
		return decimal.Decimal{}, "", err
	}
	return d, s[i:], nil
}

// dateLayouts are the date forms accepted, tried in order. Numeric forms are
// US month-first. ISO date-times are handled before these.
var dateLayouts = []string{
	"2006-01-02",
	"2006-1-2",
	"2006/1/2",
	"1/2/2006",    // 07/06/2025, 7/6/2025
	"1/2/06",      // 07/06/25, 7/6/25
	"1-2-2006",    // 07-06-2025
	"1-2-06",      // 07-06-25
	"Jan 2, 2006", // Jul 6, 2025 (also "JUL 6, 2025")
	"Jan 2 2006",
	"January 2, 2006",
	"January 2 2006",
	"Mon, Jan 2, 2006",
	"Monday, January 2, 2006",
	"2-Jan-06",   // 6-Jul-25
	"2-Jan-2006", // 6-Jul-2025
	"2 Jan 2006",
	"2 January 2006",
}

// dateTimeLayouts are ISO 8601 date-times. Those with a zone are converted to
// the audit location before their date is taken; those without one are read
// as local already.
var dateTimeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04",
	"2006-01-02 15:04:05",
	"2006-01-02 15:04:05Z07:00",
}

// DateLayouts returns the accepted date forms, for documentation and help.
func DateLayouts() []string {
	return append(append([]string(nil), dateLayouts...), dateTimeLayouts...)
}

// ParseDate parses a calendar date: "2025-07-06", an ISO date-time
// ("2025-07-06T14:03:00Z", whose date is taken in loc; nil loc is UTC), or a
// display form Smartsheet shows: "07/06/25", "07/06/2025", "7/6/2025",
// "Jul 6, 2025", "6-Jul-25"… (see [DateLayouts]; numeric forms are US
// month-first). The result is midnight UTC of that date. Blank gives ok=false
// and no error.
func ParseDate(raw string, loc *time.Location) (t time.Time, ok bool, err error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return time.Time{}, false, nil
	}
	if loc == nil {
		loc = time.UTC
	}
	if len(s) > 10 && isDigit(s[0]) && strings.IndexByte(s, '-') == 4 {
		for _, l := range dateTimeLayouts {
			if t, err := time.Parse(l, s); err == nil {
				if strings.HasSuffix(l, "07:00") {
					t = t.In(loc)
				}
				return checkYear(raw, civilDate(t))
			}
		}
	}
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return checkYear(raw, civilDate(t))
		}
	}
	return time.Time{}, false, fmt.Errorf("date %q: not a recognised date form", raw)
}

// minYear is the earliest year accepted: earlier dates (year 1 is Go's zero
// time, which the audit reads as "unknown") are typos, not billing dates.
const minYear = 1900

func checkYear(raw string, t time.Time) (time.Time, bool, error) {
	if t.Year() < minYear {
		return time.Time{}, false, fmt.Errorf("date %q: year %d is before %d", raw, t.Year(), minYear)
	}
	return t, true, nil
}

// civilDate returns midnight UTC of t's date as seen in t's location.
func civilDate(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// WeekEndingOf returns the week ending for a date: the Sunday on or after it
// (a Sunday maps to itself), at midnight UTC.
func WeekEndingOf(date time.Time) time.Time {
	d := civilDate(date)
	return d.AddDate(0, 0, (7-int(d.Weekday()))%7)
}

// FormatDate writes a calendar date as YYYY-MM-DD, or "" for the zero time.
func FormatDate(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format("2006-01-02")
}
