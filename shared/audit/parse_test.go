package audit

import (
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func TestParseMoney(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		want    string // decimal; "" with ok=false
		ok      bool
		wantErr bool
	}{
		{name: "plain", raw: "1234.5", want: "1234.5", ok: true},
		{name: "dollar and comma", raw: "$1,234.56", want: "1234.56", ok: true},
		{name: "negative dollar", raw: "-$5.00", want: "-5", ok: true},
		{name: "dollar negative", raw: "$-5.00", want: "-5", ok: true},
		{name: "parentheses", raw: "(12.50)", want: "-12.5", ok: true},
		{name: "parentheses dollar", raw: "($1,000.00)", want: "-1000", ok: true},
		{name: "spaces", raw: " 1,000 ", want: "1000", ok: true},
		{name: "nbsp", raw: "\u00a01200\u00a0", want: "1200", ok: true},
		{name: "number cell", raw: "1200", want: "1200", ok: true},
		{name: "exponent", raw: "1.0E7", want: "10000000", ok: true},
		{name: "leading dot", raw: ".5", want: "0.5", ok: true},
		{name: "zero", raw: "0", want: "0", ok: true},
		{name: "blank", raw: "", ok: false},
		{name: "spaces only", raw: "   ", ok: false},
		{name: "letter O", raw: "$1,2O0", wantErr: true},
		{name: "bad grouping", raw: "1,2345", wantErr: true},
		{name: "european decimal", raw: "1,5", wantErr: true},
		{name: "text", raw: "TBD", wantErr: true},
		{name: "dollar only", raw: "$", wantErr: true},
		{name: "double negative", raw: "(-5)", wantErr: true},
		{name: "huge exponent", raw: "1e999999999", wantErr: true},
		{name: "trailing text", raw: "12 dollars", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := ParseMoney(tt.raw)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseMoney(%q) error = %v, want error %v", tt.raw, err, tt.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tt.raw) {
					t.Errorf("ParseMoney(%q) error %q does not name the raw text", tt.raw, err)
				}
				return
			}
			if ok != tt.ok {
				t.Fatalf("ParseMoney(%q) ok = %v, want %v", tt.raw, ok, tt.ok)
			}
			if ok && !got.Equal(decimal.RequireFromString(tt.want)) {
				t.Errorf("ParseMoney(%q) = %s, want %s", tt.raw, got, tt.want)
			}
		})
	}
}

func TestParseQuantity(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		want    string
		ok      bool
		wantErr bool
	}{
		{name: "integer", raw: "3", want: "3", ok: true},
		{name: "fraction", raw: "2.5", want: "2.5", ok: true},
		{name: "unit", raw: "3 EA", want: "3", ok: true},
		{name: "unit glued", raw: "10LF", want: "10", ok: true},
		{name: "unit with dot", raw: "4 ea.", want: "4", ok: true},
		{name: "grouped", raw: "1,200 ft", want: "1200", ok: true},
		{name: "negative", raw: "-1", want: "-1", ok: true},
		{name: "blank", raw: " ", ok: false},
		{name: "letters in number", raw: "1,2O0", wantErr: true},
		{name: "no number", raw: "EA", wantErr: true},
		{name: "two numbers", raw: "3 4", wantErr: true},
		{name: "money", raw: "$3", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := ParseQuantity(tt.raw)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseQuantity(%q) error = %v, want error %v", tt.raw, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if ok != tt.ok {
				t.Fatalf("ParseQuantity(%q) ok = %v, want %v", tt.raw, ok, tt.ok)
			}
			if ok && !got.Equal(decimal.RequireFromString(tt.want)) {
				t.Errorf("ParseQuantity(%q) = %s, want %s", tt.raw, got, tt.want)
			}
		})
	}
}

func TestParseDate(t *testing.T) {
	chicago := mustLocation(t, "America/Chicago")
	tests := []struct {
		name    string
		raw     string
		loc     *time.Location
		want    time.Time
		ok      bool
		wantErr bool
	}{
		{name: "ISO date", raw: "2025-07-06", want: date(2025, 7, 6), ok: true},
		{name: "ISO date-time Z", raw: "2025-07-06T14:03:00Z", want: date(2025, 7, 6), ok: true},
		{name: "ISO date-time Z in Chicago is the day before", raw: "2025-07-07T03:00:00Z", loc: chicago, want: date(2025, 7, 6), ok: true},
		{name: "ISO date-time offset", raw: "2025-07-06T23:30:00-05:00", want: date(2025, 7, 7), ok: true},
		{name: "ISO date-time no zone", raw: "2025-07-06T23:30:00", loc: chicago, want: date(2025, 7, 6), ok: true},
		{name: "US short year", raw: "07/06/25", want: date(2025, 7, 6), ok: true},
		{name: "US long year", raw: "07/06/2025", want: date(2025, 7, 6), ok: true},
		{name: "US no zeros", raw: "7/6/2025", want: date(2025, 7, 6), ok: true},
		{name: "US dashes", raw: "07-06-2025", want: date(2025, 7, 6), ok: true},
		{name: "month name", raw: "Jul 6, 2025", want: date(2025, 7, 6), ok: true},
		{name: "month name upper", raw: "JUL 6, 2025", want: date(2025, 7, 6), ok: true},
		{name: "long month name", raw: "July 6, 2025", want: date(2025, 7, 6), ok: true},
		{name: "day-month-year", raw: "6-Jul-25", want: date(2025, 7, 6), ok: true},
		{name: "day-month-long-year", raw: "06-Jul-2025", want: date(2025, 7, 6), ok: true},
		{name: "weekday", raw: "Sun, Jul 6, 2025", want: date(2025, 7, 6), ok: true},
		{name: "2035 typo parses", raw: "07/06/2035", want: date(2035, 7, 6), ok: true},
		{name: "blank", raw: "", ok: false},
		{name: "invalid day", raw: "2025-02-30", wantErr: true},
		{name: "text", raw: "last week", wantErr: true},
		{name: "day-first is not accepted", raw: "25/07/2025", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := ParseDate(tt.raw, tt.loc)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseDate(%q) error = %v, want error %v", tt.raw, err, tt.wantErr)
			}
			if ok != tt.ok || !got.Equal(tt.want) {
				t.Errorf("ParseDate(%q) = %v, %v, want %v, %v", tt.raw, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestWeekEndingOf(t *testing.T) {
	tests := []struct {
		name string
		in   time.Time
		want time.Time
	}{
		{name: "Sunday maps to itself", in: date(2025, 7, 6), want: date(2025, 7, 6)},
		{name: "Monday", in: date(2025, 7, 7), want: date(2025, 7, 13)},
		{name: "Saturday", in: date(2025, 7, 12), want: date(2025, 7, 13)},
		{name: "next Monday", in: date(2025, 7, 14), want: date(2025, 7, 20)},
		{name: "new year Wednesday", in: date(2025, 1, 1), want: date(2025, 1, 5)},
		{name: "across month end", in: date(2025, 6, 30), want: date(2025, 7, 6)},
		{name: "time of day ignored", in: time.Date(2025, 7, 6, 23, 59, 0, 0, time.UTC), want: date(2025, 7, 6)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := WeekEndingOf(tt.in); !got.Equal(tt.want) {
				t.Errorf("WeekEndingOf(%v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestWeekEnding(t *testing.T) {
	tests := []struct {
		name           string
		week, snapshot string
		want           time.Time
		ok             bool
	}{
		{name: "week column wins", week: "2025-07-06", snapshot: "2025-07-10", want: date(2025, 7, 6), ok: true},
		{name: "blank week falls back to snapshot", week: "", snapshot: "2025-07-07", want: date(2025, 7, 13), ok: true},
		{name: "unparseable week falls back to snapshot", week: "soon", snapshot: "07/12/25", want: date(2025, 7, 13), ok: true},
		{name: "snapshot Sunday", week: "", snapshot: "2025-07-06", want: date(2025, 7, 6), ok: true},
		{name: "neither", week: "", snapshot: "", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := WeekEnding(tt.week, tt.snapshot, time.UTC)
			if ok != tt.ok || !got.Equal(tt.want) {
				t.Errorf("WeekEnding(%q, %q) = %v, %v, want %v, %v", tt.week, tt.snapshot, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func mustLocation(tb testing.TB, name string) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		tb.Fatalf("load location %q: %v", name, err)
	}
	return loc
}

func FuzzParseMoney(f *testing.F) {
	for _, s := range []string{"$1,234.56", "1234.5", "-$5.00", "(12.50)", " 1,000 ", "$1,2O0", "", "1.0E7", "1e-3", "(", "$", "-", "1,", ",1", "9999999999999999999999.99"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		d, ok, err := ParseMoney(raw)
		if err != nil || !ok {
			return
		}
		back, ok2, err2 := ParseMoney(d.String())
		if err2 != nil || !ok2 || !back.Equal(d) {
			t.Fatalf("ParseMoney(%q) = %s, but ParseMoney(%q) = %s, %v, %v", raw, d, d.String(), back, ok2, err2)
		}
	})
}

func FuzzParseQuantity(f *testing.F) {
	for _, s := range []string{"3 EA", "2.5", "10LF", "1,200 ft", "-1", "", "1,2O0", "2E5", "3E", "e5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		d, ok, err := ParseQuantity(raw)
		if err != nil || !ok {
			return
		}
		back, ok2, err2 := ParseQuantity(d.String())
		if err2 != nil || !ok2 || !back.Equal(d) {
			t.Fatalf("ParseQuantity(%q) = %s, but ParseQuantity(%q) = %s, %v, %v", raw, d, d.String(), back, ok2, err2)
		}
	})
}

func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"2025-07-06", "2025-07-06T14:03:00Z", "07/06/25", "07/06/2025", "Jul 6, 2025", "6-Jul-25", "", "2035-13-01", "0000-01-01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		d, ok, err := ParseDate(raw, time.UTC)
		if err != nil || !ok {
			return
		}
		if d.Hour() != 0 || d.Minute() != 0 || d.Location() != time.UTC {
			t.Fatalf("ParseDate(%q) = %v, want midnight UTC", raw, d)
		}
		back, ok2, err2 := ParseDate(FormatDate(d), time.UTC)
		if d.Year() >= 0 && d.Year() <= 9999 && (err2 != nil || !ok2 || !back.Equal(d)) {
			t.Fatalf("ParseDate(%q) = %v, but ParseDate(%q) = %v, %v, %v", raw, d, FormatDate(d), back, ok2, err2)
		}
		if we := WeekEndingOf(d); we.Weekday() != time.Sunday || we.Before(d) || we.Sub(d) > 6*24*time.Hour {
			t.Fatalf("WeekEndingOf(%v) = %v, want the Sunday on or after", d, we)
		}
	})
}
