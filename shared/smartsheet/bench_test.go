package smartsheet

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// sheetJSON builds a realistic GET /sheets/{id} answer: rows rows of 10
// columns (text, money, dates, checkbox, picklist, contact, formulas).
func sheetJSON(tb testing.TB, rows int) []byte {
	tb.Helper()
	var b strings.Builder
	b.WriteString(`{"id":4583173393803140,"name":"Billing 2024 - Field Ops","version":1234,"totalRowCount":`)
	fmt.Fprintf(&b, "%d", rows)
	b.WriteString(`,"accessLevel":"OWNER","permalink":"https://app.smartsheet.com/sheets/abcdefghijklmnop","createdAt":"2024-01-02T10:00:00Z","modifiedAt":"2024-06-05T14:53:31Z","columns":[`)
	titles := []string{"Job", "Client", "Technician", "Date", "Hours", "Rate", "Amount", "Approved", "Status", "Notes"}
	types := []string{"TEXT_NUMBER", "TEXT_NUMBER", "CONTACT_LIST", "DATE", "TEXT_NUMBER", "TEXT_NUMBER", "TEXT_NUMBER", "CHECKBOX", "PICKLIST", "TEXT_NUMBER"}
	for i, t := range titles {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"index":%d,"title":%q,"type":%q,"primary":%t,"validation":false,"width":150}`, 1000000000000+int64(i), i, t, types[i], i == 0)
	}
	b.WriteString(`],"rows":[`)
	for r := 0; r < rows; r++ {
		if r > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"rowNumber":%d,"expanded":true,"createdAt":"2024-03-%02dT08:15:00Z","modifiedAt":"2024-06-%02dT16:42:10Z","cells":[`, 7000000000000000+int64(r), r+1, r%28+1, r%28+1)
		hours := 1 + r%9
		rate := "87.50"
		fmt.Fprintf(&b, `{"columnId":1000000000000,"value":"JOB-%06d","displayValue":"JOB-%06d"},`, r, r)
		fmt.Fprintf(&b, `{"columnId":1000000000001,"value":"Acme Facilities Ltd %d","displayValue":"Acme Facilities Ltd %d"},`, r%50, r%50)
		fmt.Fprintf(&b, `{"columnId":1000000000002,"value":"tech%d@fieldaudit.example","displayValue":"Technician Number %d"},`, r%20, r%20)
		fmt.Fprintf(&b, `{"columnId":1000000000003,"value":"2024-05-%02d","displayValue":"05/%02d/24"},`, r%28+1, r%28+1)
		fmt.Fprintf(&b, `{"columnId":1000000000004,"value":%d,"displayValue":"%d"},`, hours, hours)
		fmt.Fprintf(&b, `{"columnId":1000000000005,"value":%s,"displayValue":"$%s"},`, rate, rate)
		fmt.Fprintf(&b, `{"columnId":1000000000006,"value":%d.%02d,"displayValue":"$%d.%02d","formula":"=[Hours]@row * [Rate]@row"},`, hours*87, r%100, hours*87, r%100)
		fmt.Fprintf(&b, `{"columnId":1000000000007,"value":%t},`, r%3 == 0)
		fmt.Fprintf(&b, `{"columnId":1000000000008,"value":"Invoiced","displayValue":"Invoiced"},`)
		if r%4 == 0 {
			b.WriteString(`{"columnId":1000000000009}`)
		} else {
			fmt.Fprintf(&b, `{"columnId":1000000000009,"value":"Replaced filter \"F-%d\"; customer on site","displayValue":"Replaced filter \"F-%d\"; customer on site"}`, r, r)
		}
		b.WriteString(`]}`)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// BenchmarkDecodeSheet5000 measures DecodeSheet, the decoder GetSheet uses.
func BenchmarkDecodeSheet5000(b *testing.B) {
	benchDecode(b, DecodeSheet)
}

// BenchmarkDecodeSheet5000Stdlib is the encoding/json baseline.
func BenchmarkDecodeSheet5000Stdlib(b *testing.B) {
	benchDecode(b, func(data []byte, s *Sheet) error { return json.Unmarshal(data, s) })
}

func benchDecode(b *testing.B, decode func([]byte, *Sheet) error) {
	data := sheetJSON(b, 5000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		var s Sheet
		if err := decode(data, &s); err != nil {
			b.Fatal(err)
		}
		if len(s.Rows) != 5000 {
			b.Fatalf("rows = %d, want 5000", len(s.Rows))
		}
	}
	b.ReportMetric(float64(5000*b.N)/b.Elapsed().Seconds(), "rows/s")
}
