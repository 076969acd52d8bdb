package smartsim

import (
	"fmt"
	"testing"

	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

func TestFormatNumber(t *testing.T) {
	const usd = smartsheet.FormatCurrencyUSD
	tests := []struct {
		name        string
		v           smartsheet.Value
		own, column string
		want        string
		wantOK      bool
	}{
		{"column currency", smartsheet.NumberValue("4350"), "", usd, "$4,350.00", true},
		{"negative currency", smartsheet.NumberValue("-40"), "", usd, "-$40.00", true},
		{"rounds half away from zero", smartsheet.NumberValue("1234567.125"), "", usd, "$1,234,567.13", true},
		{"small negative rounds to zero", smartsheet.NumberValue("-0.001"), "", usd, "$0.00", true},
		{"under a thousand", smartsheet.NumberValue("999.5"), "", usd, "$999.50", true},
		{"own bold keeps the column's currency", smartsheet.NumberValue("12"), ",,1,,,,,,,23,,,,,,,", usd, "$12.00", true},
		{"own number format wins", smartsheet.NumberValue("1234.5"), ",,,,,,,,,,,,1,0,1,,", usd, "1234.5", true},
		{"currency without decimals or currency set", smartsheet.NumberValue("5"), ",,,,,,,,,,,,,,2,,", "", "$5.00", true},
		{"euro", smartsheet.NumberValue("5"), ",,,,,,,,,,,6,2,,2,,", "", "€5.00", true},
		{"number keeps its decimals", smartsheet.NumberValue("1234.5"), "", ",,,,,,,,,,,,,1,1,,", "1,234.5", true},
		{"percent", smartsheet.NumberValue("0.125"), "", ",,,,,,,,,,,,1,,3,,", "12.5%", true},
		{"no number format", smartsheet.NumberValue("4350"), "", ",,1,,,,,,,,,,,,,,", "", false},
		{"no format", smartsheet.NumberValue("4350"), "", "", "", false},
		{"text is not formatted", smartsheet.StringValue("4350"), "", usd, "", false},
		{"short descriptor", smartsheet.NumberValue("4350"), "", ",,,,,,,,4,,,,,,,", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := formatNumber(tt.v, tt.own, tt.column)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("formatNumber(%s, %q, %q) = %q, %t, want %q, %t", tt.v, tt.own, tt.column, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestValidFormat(t *testing.T) {
	tests := []struct {
		f    string
		want bool
	}{
		{"", true},
		{smartsheet.FormatCurrencyUSD, true},
		{",,,,,,,,4,,,,,,,", true},
		{",,,,,,,,,,,,,,,,,", false}, // 18 positions
		{",,x,,,,,,,,,,,,,,", false},
		{",,-1,,,,,,,,,,,,,,", false},
	}
	for _, tt := range tests {
		if got := validFormat(tt.f); got != tt.want {
			t.Errorf("validFormat(%q) = %t, want %t", tt.f, got, tt.want)
		}
	}
}

// TestColumnFormatAndLocked covers format and locked on create sheet, add
// columns and update column, and the display of numbers in a currency column.
func TestColumnFormatAndLocked(t *testing.T) {
	s := newTestServer(t, Options{})
	usd := smartsheet.FormatCurrencyUSD
	var created smartsheet.Result[smartsheet.Sheet]
	r := call(t, s, "POST", "/sheets", fmt.Sprintf(`{"name":"Money","columns":[
		{"title":"Name","type":"TEXT_NUMBER","primary":true},
		{"title":"Amount","type":"TEXT_NUMBER","format":%q,"locked":true},
		{"title":"Note","type":"TEXT_NUMBER","locked":false}]}`, usd))
	r.decode(t, &created)
	if r.status != 200 {
		t.Fatalf("create sheet = %d %s", r.status, r.body)
	}
	sh := created.Result
	amount, note := sh.Columns[1], sh.Columns[2]
	if amount.Format != usd || amount.Locked == nil || !*amount.Locked {
		t.Errorf("created Amount column = %+v, want format %q and locked", amount, usd)
	}
	if note.Locked != nil || note.Format != "" {
		t.Errorf("created Note column = %+v, want no locked (false is omitted) and no format", note)
	}

	var added smartsheet.Result[[]smartsheet.Column]
	call(t, s, "POST", "/sheets/"+id(sh.ID)+"/columns", fmt.Sprintf(`[{"title":"Fee","type":"TEXT_NUMBER","index":3,"format":%q,"locked":true}]`, usd)).decode(t, &added)
	if len(added.Result) != 1 || added.Result[0].Format != usd || added.Result[0].Locked == nil {
		t.Errorf("add column = %+v, want format and locked echoed", added.Result)
	}
	var upd smartsheet.Result[smartsheet.Column]
	call(t, s, "PUT", "/sheets/"+id(sh.ID)+"/columns/"+id(note.ID), fmt.Sprintf(`{"format":%q,"locked":true}`, usd)).decode(t, &upd)
	if upd.Result.Format != usd || upd.Result.Locked == nil || !*upd.Result.Locked {
		t.Errorf("update column = %+v, want format and locked", upd.Result)
	}
	var unlocked smartsheet.Result[smartsheet.Column]
	call(t, s, "PUT", "/sheets/"+id(sh.ID)+"/columns/"+id(note.ID), `{"locked":false}`).decode(t, &unlocked)
	if unlocked.Result.Locked != nil || unlocked.Result.Format != usd {
		t.Errorf("unlock column = %+v, want no locked and the format kept", unlocked.Result)
	}
	for _, tt := range []struct{ name, method, path, body string }{
		{"bad format on create", "POST", "/sheets", `{"name":"X","columns":[{"title":"A","primary":true,"format":"bold"}]}`},
		{"bad format on add", "POST", "/sheets/" + id(sh.ID) + "/columns", `{"title":"B","format":"1,2,x"}`},
		{"bad format on update", "PUT", "/sheets/" + id(sh.ID) + "/columns/" + id(amount.ID), `{"format":"1,2,x"}`},
	} {
		if r := call(t, s, tt.method, tt.path, tt.body); r.status != 400 || r.errBody(t).ErrorCode != smartsheet.CodeInvalidParameter {
			t.Errorf("%s = %d %s, want 400 errorCode 1018", tt.name, r.status, r.body)
		}
	}

	rows := fmt.Sprintf(`[{"cells":[{"columnId":%d,"value":"a"},{"columnId":%d,"value":4350}]},
		{"cells":[{"columnId":%d,"value":"b"},{"columnId":%d,"value":-40}]},
		{"cells":[{"columnId":%d,"value":"c"},{"columnId":%d,"value":7,"format":",,,,,,,,,,,,0,,1,,"}]},
		{"cells":[{"columnId":%d,"value":"d"},{"columnId":%d,"value":"n/a"}]}]`,
		sh.Columns[0].ID, amount.ID, sh.Columns[0].ID, amount.ID, sh.Columns[0].ID, amount.ID, sh.Columns[0].ID, amount.ID)
	var res smartsheet.Result[[]smartsheet.Row]
	if r := call(t, s, "POST", "/sheets/"+id(sh.ID)+"/rows", rows); r.status != 200 {
		t.Fatalf("add rows = %d %s", r.status, r.body)
	} else {
		r.decode(t, &res)
	}
	var got []string
	for _, row := range res.Result {
		got = append(got, row.Cell(amount.ID).DisplayValue)
	}
	if want := []string{"$4,350.00", "-$40.00", "7", "n/a"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Amount display values = %q, want %q", got, want)
	}
	if v := res.Result[0].Cell(amount.ID).Value; v.Kind() != smartsheet.KindNumber || v.Text() != "4350" {
		t.Errorf("Amount value = %s (%s), want the number 4350", v, v.Kind())
	}

	// Formats only with include=format; locked always (when true).
	for _, tt := range []struct {
		name, query string
		want        string
	}{
		{"without include", "", ""},
		{"with include=format", "?include=format", usd},
	} {
		var got smartsheet.Sheet
		call(t, s, "GET", "/sheets/"+id(sh.ID)+tt.query, nil).decode(t, &got)
		if c := got.Column("Amount"); c.Format != tt.want || c.Locked == nil {
			t.Errorf("GET sheet %s: Amount = %+v, want format %q and locked", tt.name, c, tt.want)
		}
		if c := got.Rows[0].Cell(amount.ID); c.DisplayValue != "$4,350.00" {
			t.Errorf("GET sheet %s: Amount cell = %+v, want display $4,350.00", tt.name, c)
		}
		var cols smartsheet.IndexResult[smartsheet.Column]
		call(t, s, "GET", "/sheets/"+id(sh.ID)+"/columns"+tt.query, nil).decode(t, &cols)
		if c := cols.Data[1]; c.Title != "Amount" || c.Format != tt.want || c.Locked == nil {
			t.Errorf("GET columns %s: %+v, want Amount with format %q and locked", tt.name, c, tt.want)
		}
	}

	var info struct {
		Formats struct {
			Currency     []currency `json:"currency"`
			NumberFormat []string   `json:"numberFormat"`
		} `json:"formats"`
	}
	call(t, s, "GET", "/serverinfo", nil).decode(t, &info)
	if c := info.Formats.Currency; len(c) <= currencyUSD || c[currencyUSD].Code != "USD" || info.Formats.NumberFormat[numberFormatMoney] != "CURRENCY" {
		t.Errorf("serverinfo formats = %+v, want USD at %d and CURRENCY at %d", info.Formats, currencyUSD, numberFormatMoney)
	}
}
