package smartsim

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/smartsheet"
	"github.com/google/go-cmp/cmp"
)

// summaryTitles returns the titles of fields in order.
func summaryTitles(fields []smartsheet.SummaryField) []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = f.Title
	}
	return out
}

func TestSummaryFields(t *testing.T) {
	alice := smartsheet.User{Name: "Alice Auditor", Email: "alice@example.com"}
	s := newTestServer(t, Options{Tokens: map[string]smartsheet.User{"test-token": alice}})
	f := newFixture(t, s, 1)
	path := "/sheets/" + id(f.sheetID) + "/summary/fields"
	before := mustSheet(t, s, f.sheetID).Version

	var add smartsheet.Result[[]smartsheet.SummaryField]
	r := call(t, s, "POST", path, fmt.Sprintf(`[
		{"title":"Total","type":"TEXT_NUMBER","objectValue":4350,"format":%q},
		{"title":"Period end","type":"DATE","objectValue":"2024-06-09"},
		{"title":"Reviewed","type":"CHECKBOX","objectValue":true,"locked":true},
		{"title":"Status","objectValue":"open","index":0}]`, smartsheet.FormatCurrencyUSD))
	r.decode(t, &add)
	if r.status != 200 || len(add.Result) != 4 {
		t.Fatalf("add summary fields = %d %s", r.status, r.body)
	}
	if add.Version != before+1 {
		t.Errorf("add version = %d, want %d (one save)", add.Version, before+1)
	}
	total := add.Result[0]
	if total.ID == 0 || *total.Index != 1 || total.DisplayValue != "$4,350.00" || total.ObjectValue.Text() != "4350" ||
		total.ModifiedBy == nil || *total.ModifiedBy != alice || !total.ModifiedAt.Equal(t0) {
		t.Errorf("added Total = %+v, want an id, index 1, display $4,350.00, modified by %v at %v", total, alice, t0)
	}
	if got := add.Result[1].DisplayValue; got != "06/09/24" {
		t.Errorf("added Period end display = %q, want 06/09/24", got)
	}
	if got := add.Result[3]; got.Type != smartsheet.TypeTextNumber || *got.Index != 0 {
		t.Errorf("added Status = %+v, want TEXT_NUMBER (the default) at index 0", got)
	}

	// GET honours paging, includeAll, include and exclude.
	var all smartsheet.IndexResult[smartsheet.SummaryField]
	call(t, s, "GET", path+"?includeAll=true", nil).decode(t, &all)
	if diff := cmp.Diff([]string{"Status", "Total", "Period end", "Reviewed"}, summaryTitles(all.Data)); diff != "" {
		t.Errorf("summary field order (-want +got):\n%s", diff)
	}
	if d := all.Data[1]; d.Format != "" || d.ModifiedBy != nil || d.DisplayValue != "$4,350.00" {
		t.Errorf("plain GET Total = %+v, want no format or writer info, with displayValue", d)
	}
	if d := all.Data[3]; d.Locked == nil || !*d.Locked {
		t.Errorf("GET Reviewed = %+v, want locked", d)
	}
	var page smartsheet.IndexResult[smartsheet.SummaryField]
	call(t, s, "GET", path+"?page=2&pageSize=3&include=format,writerInfo&exclude=displayValue", nil).decode(t, &page)
	if page.TotalCount != 4 || page.TotalPages != 2 || len(page.Data) != 1 || page.Data[0].Title != "Reviewed" ||
		page.Data[0].ModifiedBy == nil || page.Data[0].DisplayValue != "" || *page.Data[0].Index != 3 {
		t.Errorf("page 2 of 3 = %+v, want Reviewed (index 3) with writer info and no displayValue", page)
	}
	var sum struct {
		Fields []smartsheet.SummaryField `json:"fields"`
	}
	call(t, s, "GET", "/sheets/"+id(f.sheetID)+"/summary?include=format", nil).decode(t, &sum)
	if len(sum.Fields) != 4 || sum.Fields[1].Format != smartsheet.FormatCurrencyUSD {
		t.Errorf("GET summary = %+v, want 4 fields with Total's format", sum)
	}

	// Update: value, title and position; other fields keep theirs.
	s.AdvanceClock(time.Hour)
	var upd smartsheet.Result[[]smartsheet.SummaryField]
	r = call(t, s, "PUT", path, fmt.Sprintf(`[{"id":%d,"objectValue":-40.5,"title":"Net total","index":3}]`, total.ID))
	r.decode(t, &upd)
	if r.status != 200 || len(upd.Result) != 1 {
		t.Fatalf("update summary fields = %d %s", r.status, r.body)
	}
	if u := upd.Result[0]; u.Title != "Net total" || u.DisplayValue != "-$40.50" || *u.Index != 3 ||
		!u.ModifiedAt.Equal(t0.Add(time.Hour)) || !u.CreatedAt.Equal(t0) || u.Format != smartsheet.FormatCurrencyUSD {
		t.Errorf("updated Total = %+v, want Net total, -$40.50, index 3, modified an hour after creation, format kept", u)
	}
	if upd.Version != add.Version+1 {
		t.Errorf("update version = %d, want %d", upd.Version, add.Version+1)
	}
	got, err := s.SummaryFields(f.sheetID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"Status", "Period end", "Reviewed", "Net total"}, summaryTitles(got)); diff != "" {
		t.Errorf("order after move (-want +got):\n%s", diff)
	}

	// renameIfConflict appends a number instead of failing.
	var ren smartsheet.Result[[]smartsheet.SummaryField]
	call(t, s, "POST", path+"?renameIfConflict=true", `[{"title":"status"}]`).decode(t, &ren)
	if len(ren.Result) != 1 || ren.Result[0].Title != "status (1)" {
		t.Errorf("add with renameIfConflict = %+v, want title 'status (1)'", ren.Result)
	}

	// The summary survives Save and Load.
	var buf bytes.Buffer
	if err := s.Save(&buf); err != nil {
		t.Fatal(err)
	}
	o := NewServer(Options{})
	if err := o.Load(&buf); err != nil {
		t.Fatal(err)
	}
	want, _ := s.SummaryFields(f.sheetID)
	loaded, _ := o.SummaryFields(f.sheetID)
	if diff := cmp.Diff(want, loaded, cmp.Comparer(func(x, y smartsheet.Value) bool { return x.Equal(y) })); diff != "" {
		t.Errorf("summary after Load (-saved +loaded):\n%s", diff)
	}
}

func TestSummaryFieldErrors(t *testing.T) {
	s := newTestServer(t, Options{})
	f := newFixture(t, s, 0)
	path := "/sheets/" + id(f.sheetID) + "/summary/fields"
	var seed smartsheet.Result[[]smartsheet.SummaryField]
	call(t, s, "POST", path, `[{"title":"Total","objectValue":1},{"title":"Due","type":"DATE"}]`).decode(t, &seed)
	if len(seed.Result) != 2 {
		t.Fatalf("seed = %+v", seed)
	}
	totalID, dueID := seed.Result[0].ID, seed.Result[1].ID
	version := mustSheet(t, s, f.sheetID).Version
	tests := []struct {
		name, method, path, body string
		status, code             int
	}{
		{"duplicate title", "POST", path, `[{"title":"Total"}]`, 400, smartsheet.CodeInvalidParameter},
		{"duplicate title, other case", "POST", path, `[{"title":"TOTAL"}]`, 400, smartsheet.CodeInvalidParameter},
		{"duplicate title within the request", "POST", path, `[{"title":"A"},{"title":"A"}]`, 400, smartsheet.CodeInvalidParameter},
		{"rename onto another title", "PUT", path, fmt.Sprintf(`[{"id":%d,"title":"Due"}]`, totalID), 400, smartsheet.CodeInvalidParameter},
		{"missing title", "POST", path, `[{"type":"TEXT_NUMBER"}]`, 400, smartsheet.CodeMissingAttribute},
		{"date needs YYYY-MM-DD", "POST", path, `[{"title":"D","type":"DATE","objectValue":"06/09/2024"}]`, 400, smartsheet.CodeStrictTypeViolation},
		{"checkbox needs a boolean", "POST", path, `[{"title":"C","type":"CHECKBOX","objectValue":"yes"}]`, 400, smartsheet.CodeStrictTypeViolation},
		{"text takes no boolean", "POST", path, `[{"title":"T","objectValue":true}]`, 400, smartsheet.CodeStrictTypeViolation},
		{"contact needs an email", "POST", path, `[{"title":"P","type":"CONTACT_LIST","objectValue":"Joe"}]`, 400, smartsheet.CodeStrictTypeViolation},
		{"bad type", "POST", path, `[{"title":"X","type":"MONEY"}]`, 400, smartsheet.CodeInvalidParameter},
		{"bad format", "POST", path, `[{"title":"X","format":"bold"}]`, 400, smartsheet.CodeInvalidParameter},
		{"index past the end", "POST", path, `[{"title":"X","index":3}]`, 400, smartsheet.CodeInvalidParameter},
		{"formula", "POST", path, `[{"title":"X","formula":"=1+1"}]`, 400, smartsheet.CodeInvalidParameter},
		{"bad json", "POST", path, `[{"title":`, 400, smartsheet.CodeInvalidJSON},
		{"bad renameIfConflict", "POST", path + "?renameIfConflict=maybe", `[{"title":"X"}]`, 400, smartsheet.CodeInvalidParameter},
		{"update without id", "PUT", path, `[{"title":"X"}]`, 400, smartsheet.CodeMissingAttribute},
		{"update unknown id", "PUT", path, `[{"id":5,"title":"X"}]`, 404, smartsheet.CodeNotFound},
		{"type change the value does not fit", "PUT", path, fmt.Sprintf(`[{"id":%d,"type":"DATE"}]`, totalID), 400, smartsheet.CodeStrictTypeViolation},
		{"second item bad: nothing applied", "PUT", path, fmt.Sprintf(`[{"id":%d,"objectValue":2},{"id":%d,"objectValue":"soon"}]`, totalID, dueID), 400, smartsheet.CodeStrictTypeViolation},
		{"unknown sheet", "POST", "/sheets/5/summary/fields", `[{"title":"X"}]`, 404, smartsheet.CodeNotFound},
		{"bad page", "GET", path + "?page=0", "", 400, smartsheet.CodeInvalidParameter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body any
			if tt.body != "" {
				body = tt.body
			}
			r := call(t, s, tt.method, tt.path, body)
			if got := r.errBody(t); r.status != tt.status || got.ErrorCode != tt.code || got.RefID == "" {
				t.Errorf("%s %s %s = %d %s, want %d errorCode %d with a refId", tt.method, tt.path, tt.body, r.status, r.body, tt.status, tt.code)
			}
		})
	}
	if got := mustSheet(t, s, f.sheetID).Version; got != version {
		t.Errorf("sheet version after refused writes = %d, want %d (unchanged)", got, version)
	}
	fields, _ := s.SummaryFields(f.sheetID)
	if len(fields) != 2 || fields[0].ObjectValue.Text() != "1" {
		t.Errorf("summary after refused writes = %+v, want the two seeded fields unchanged", fields)
	}
}

// TestSummaryEndpointKeys: the summary endpoints count calls and take
// faults under their own keys.
func TestSummaryEndpointKeys(t *testing.T) {
	s := newTestServer(t, Options{})
	f := newFixture(t, s, 0)
	path := "/sheets/" + id(f.sheetID) + "/summary"
	s.FailNext(EndpointAddSummaryFields, 1, FaultUnexpected)
	if r := call(t, s, "POST", path+"/fields", `[{"title":"X"}]`); r.status != 500 || r.errBody(t).ErrorCode != smartsheet.CodeUnexpected {
		t.Errorf("faulted add = %d %s, want 500 errorCode 4004", r.status, r.body)
	}
	call(t, s, "POST", path+"/fields", `[{"title":"X"}]`)
	call(t, s, "PUT", path+"/fields", `[{"title":"X"}]`)
	call(t, s, "GET", path+"/fields", nil)
	call(t, s, "GET", path, nil)
	want := map[string]Counter{
		EndpointAddSummaryFields:    {Calls: 2, Faults: 1},
		EndpointUpdateSummaryFields: {Calls: 1},
		EndpointListSummaryFields:   {Calls: 1},
		EndpointGetSheetSummary:     {Calls: 1},
	}
	for key, w := range want {
		if got := s.Counter(key); got != w {
			t.Errorf("Counter(%s) = %+v, want %+v", key, got, w)
		}
	}
}

func mustSheet(tb testing.TB, s *Server, sheetID int64) smartsheet.Sheet {
	tb.Helper()
	sh, err := s.Sheet(sheetID)
	if err != nil {
		tb.Fatalf("Sheet(%d) error: %v", sheetID, err)
	}
	return sh
}
