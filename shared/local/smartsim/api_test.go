package smartsim

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/smartsheet"
	"github.com/google/go-cmp/cmp"
)

func TestAuth(t *testing.T) {
	s := newTestServer(t, Options{Tokens: map[string]smartsheet.User{"test-token": {Name: "Ann Lee", Email: "ann@example.com"}}})
	tests := []struct {
		name       string
		auth       string
		wantStatus int
		wantCode   int
	}{
		{"missing", "", 401, 1001},
		{"invalid", "Bearer nope", 401, 1002},
		{"valid", "Bearer test-token", 200, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, s, "GET", "/users/me", nil, "Authorization", tt.auth)
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d (%s)", r.status, tt.wantStatus, r.body)
			}
			if tt.wantCode != 0 {
				e := r.errBody(t)
				if e.ErrorCode != tt.wantCode || e.RefID == "" || e.Message == "" {
					t.Errorf("error = %+v, want code %d with message and refId", e, tt.wantCode)
				}
			}
		})
	}
	var me smartsheet.UserProfile
	call(t, s, "GET", "/users/me", nil).decode(t, &me)
	if me.Email != "ann@example.com" || me.FirstName != "Ann" || me.ID == 0 {
		t.Errorf("users/me = %+v", me)
	}
	call(t, s, "GET", "/users/me", nil, "Assume-User", "bob%40example.com").decode(t, &me)
	if me.Email != "bob@example.com" {
		t.Errorf("Assume-User: users/me email = %q, want bob@example.com", me.Email)
	}
	if r := call(t, s, "GET", "/serverinfo", nil); r.status != 200 || !strings.Contains(string(r.body), "supportedLocales") {
		t.Errorf("serverinfo = %d %s", r.status, r.body)
	}
}

func TestDefaultUserAnyToken(t *testing.T) {
	s := newTestServer(t, Options{})
	var me smartsheet.UserProfile
	call(t, s, "GET", "/users/me", nil, "Authorization", "Bearer whatever").decode(t, &me)
	if me.Email != DefaultUser.Email {
		t.Errorf("email = %q, want %q", me.Email, DefaultUser.Email)
	}
}

func TestGetSheetQueries(t *testing.T) {
	s := newTestServer(t, Options{Limits: Limits{Disabled: true}})
	f := newFixture(t, s, 250)
	s.AdvanceClock(time.Hour)
	changed := t0.Add(time.Hour)
	if _, err := s.SetCell(Edit{User: smartsheet.User{Name: "Foreman Joe", Email: "joe@crews.example.com"}}, f.sheetID, f.rows[7], f.colAmt, smartsheet.IntValue(999)); err != nil {
		t.Fatal(err)
	}
	base := "/sheets/" + id(f.sheetID)
	tests := []struct {
		name      string
		query     string
		wantRows  int
		wantTotal int
		wantCols  int
		check     func(t *testing.T, sh smartsheet.Sheet)
	}{
		{name: "all rows without paging", query: "", wantRows: 250, wantTotal: 250, wantCols: 5},
		{name: "pageSize", query: "?pageSize=100", wantRows: 100, wantTotal: 250, wantCols: 5},
		{name: "last page", query: "?page=3&pageSize=100", wantRows: 50, wantTotal: 250, wantCols: 5,
			check: func(t *testing.T, sh smartsheet.Sheet) {
				if sh.Rows[0].RowNumber != 201 {
					t.Errorf("first rowNumber = %d, want 201", sh.Rows[0].RowNumber)
				}
			}},
		{name: "page only defaults to 100", query: "?page=1", wantRows: 100, wantTotal: 250, wantCols: 5},
		{name: "columnIds", query: "?columnIds=" + id(f.colAmt), wantRows: 250, wantTotal: 250, wantCols: 1,
			check: func(t *testing.T, sh smartsheet.Sheet) {
				if len(sh.Rows[0].Cells) != 1 || sh.Rows[0].Cells[0].ColumnID != f.colAmt {
					t.Errorf("cells = %+v, want only Amount", sh.Rows[0].Cells)
				}
			}},
		{name: "rowIds", query: fmt.Sprintf("?rowIds=%d,%d", f.rows[3], f.rows[9]), wantRows: 2, wantTotal: 250, wantCols: 5},
		{name: "rowsModifiedSince", query: "?rowsModifiedSince=" + smartsheet.Timestamp(changed), wantRows: 1, wantTotal: 250, wantCols: 5,
			check: func(t *testing.T, sh smartsheet.Sheet) {
				if sh.Rows[0].ID != f.rows[7] {
					t.Errorf("row = %d, want %d", sh.Rows[0].ID, f.rows[7])
				}
				if c := sh.Rows[0].Cell(f.colAmt); c.Value.Text() != "999" {
					t.Errorf("amount = %s, want 999", c.Value)
				}
			}},
		{name: "writerInfo and rowPermalink", query: fmt.Sprintf("?rowIds=%d&include=writerInfo,rowPermalink", f.rows[7]), wantRows: 1, wantTotal: 250, wantCols: 5,
			check: func(t *testing.T, sh smartsheet.Sheet) {
				r := sh.Rows[0]
				want := &smartsheet.User{Name: "Foreman Joe", Email: "joe@crews.example.com"}
				if diff := cmp.Diff(want, r.ModifiedBy); diff != "" {
					t.Errorf("modifiedBy (-want +got):\n%s", diff)
				}
				if r.CreatedBy == nil || r.CreatedBy.Email != DefaultUser.Email || r.Permalink == "" {
					t.Errorf("createdBy = %+v, permalink = %q", r.CreatedBy, r.Permalink)
				}
				if !r.ModifiedAt.Equal(changed) {
					t.Errorf("modifiedAt = %v, want %v", r.ModifiedAt, changed)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, s, "GET", base+tt.query, nil)
			if r.status != 200 {
				t.Fatalf("status = %d: %s", r.status, r.body)
			}
			var sh smartsheet.Sheet
			r.decode(t, &sh)
			if len(sh.Rows) != tt.wantRows || sh.TotalRowCount != tt.wantTotal || len(sh.Columns) != tt.wantCols {
				t.Errorf("rows, total, cols = %d, %d, %d; want %d, %d, %d", len(sh.Rows), sh.TotalRowCount, len(sh.Columns), tt.wantRows, tt.wantTotal, tt.wantCols)
			}
			if tt.check != nil && len(sh.Rows) > 0 {
				tt.check(t, sh)
			}
		})
	}

	t.Run("ifVersionAfter", func(t *testing.T) {
		var sh smartsheet.Sheet
		call(t, s, "GET", base+"?pageSize=1", nil).decode(t, &sh)
		r := call(t, s, "GET", fmt.Sprintf("%s?ifVersionAfter=%d", base, sh.Version), nil)
		if got, want := strings.TrimSpace(string(r.body)), fmt.Sprintf(`{"version":%d}`, sh.Version); got != want {
			t.Errorf("unchanged body = %s, want %s", got, want)
		}
		r = call(t, s, "GET", fmt.Sprintf("%s?ifVersionAfter=%d", base, sh.Version-1), nil)
		var full smartsheet.Sheet
		r.decode(t, &full)
		if len(full.Rows) != 250 {
			t.Errorf("changed sheet rows = %d, want 250", len(full.Rows))
		}
	})

	errs := []struct {
		name, path string
		status     int
		code       int
	}{
		{"unknown sheet", "/sheets/123456", 404, 1006},
		{"bad id", "/sheets/abc", 400, 1018},
		{"bad pageSize", base + "?pageSize=x", 400, 1018},
		{"bad since", base + "?rowsModifiedSince=yesterday", 400, 1018},
		{"bad columnIds", base + "?columnIds=1,x", 400, 1018},
		{"unknown route", "/nothing/here", 404, 1006},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, s, "GET", tt.path, nil)
			if e := r.errBody(t); r.status != tt.status || e.ErrorCode != tt.code {
				t.Errorf("GET %s = %d %+v, want %d errorCode %d", tt.path, r.status, e, tt.status, tt.code)
			}
		})
	}
}

func TestListSheetsAndFolders(t *testing.T) {
	s := newTestServer(t, Options{})
	g, err := s.Populate(GenConfig{Sheets: 3, Rows: 20, Weeks: 2, Nested: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := s.CreateSheet(smartsheet.Sheet{Name: fmt.Sprintf("Other %d", i), Columns: []smartsheet.Column{{Title: "A", Primary: true}}}, 0, 0, Edit{}); err != nil {
			t.Fatal(err)
		}
	}
	var page smartsheet.IndexResult[smartsheet.SheetSummary]
	call(t, s, "GET", "/sheets?pageSize=4&page=2", nil).decode(t, &page)
	if page.TotalCount != 6 || page.TotalPages != 2 || len(page.Data) != 2 || page.PageNumber != 2 {
		t.Errorf("page 2 = %+v", page)
	}
	call(t, s, "GET", "/sheets?includeAll=true", nil).decode(t, &page)
	if len(page.Data) != 6 {
		t.Errorf("includeAll data = %d, want 6", len(page.Data))
	}
	var ws smartsheet.Workspace
	call(t, s, "GET", "/workspaces/"+id(g.WorkspaceID), nil).decode(t, &ws)
	if len(ws.Folders) != 1 || len(ws.Folders[0].Folders) != 1 || len(ws.Folders[0].Folders[0].Sheets) != 3 {
		t.Fatalf("workspace tree = %+v", ws)
	}
	var folder smartsheet.Folder
	call(t, s, "GET", "/folders/"+id(g.FolderID), nil).decode(t, &folder)
	if folder.Name != "Billing" || len(folder.Sheets) != 3 || folder.Sheets[0].ID == 0 {
		t.Errorf("folder = %+v", folder)
	}
	if r := call(t, s, "GET", "/folders/42", nil); r.status != 404 {
		t.Errorf("unknown folder status = %d", r.status)
	}
	var wsl smartsheet.IndexResult[smartsheet.Workspace]
	call(t, s, "GET", "/workspaces", nil).decode(t, &wsl)
	if wsl.TotalCount != 1 {
		t.Errorf("workspaces = %+v", wsl)
	}
}

func TestCreateSheet(t *testing.T) {
	s := newTestServer(t, Options{})
	folder, _ := s.CreateFolder("F", 0, 0)
	wsID := s.CreateWorkspace("W")
	cols := `[{"title":"Key","type":"TEXT_NUMBER","primary":true},{"title":"When","type":"DATE"},{"title":"Ok","type":"CHECKBOX"}]`
	tests := []struct {
		name     string
		path     string
		body     string
		status   int
		code     int
		inFolder int64
	}{
		{name: "ok", path: "/sheets", body: `{"name":"S1","columns":` + cols + `}`, status: 200},
		{name: "in folder", path: "/folders/" + id(folder) + "/sheets", body: `{"name":"S2","columns":` + cols + `}`, status: 200, inFolder: folder},
		{name: "in workspace", path: "/workspaces/" + id(wsID) + "/sheets", body: `{"name":"S3","columns":` + cols + `}`, status: 200},
		{name: "unknown folder", path: "/folders/77/sheets", body: `{"name":"S","columns":` + cols + `}`, status: 404, code: 1006},
		{name: "no columns", path: "/sheets", body: `{"name":"S","columns":[]}`, status: 400, code: 1054},
		{name: "no primary", path: "/sheets", body: `{"name":"S","columns":[{"title":"A","type":"TEXT_NUMBER"}]}`, status: 400, code: 1018},
		{name: "two primaries", path: "/sheets", body: `{"name":"S","columns":[{"title":"A","primary":true},{"title":"B","primary":true}]}`, status: 400, code: 1018},
		{name: "bad type", path: "/sheets", body: `{"name":"S","columns":[{"title":"A","primary":true,"type":"BLOB"}]}`, status: 400, code: 1018},
		{name: "no name", path: "/sheets", body: `{"columns":` + cols + `}`, status: 400, code: 1012},
		{name: "bad json", path: "/sheets", body: `{"name":`, status: 400, code: 1008},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, s, "POST", tt.path, tt.body)
			if r.status != tt.status {
				t.Fatalf("status = %d, want %d: %s", r.status, tt.status, r.body)
			}
			if tt.code != 0 {
				if e := r.errBody(t); e.ErrorCode != tt.code {
					t.Errorf("errorCode = %d, want %d (%s)", e.ErrorCode, tt.code, e.Message)
				}
				return
			}
			var res smartsheet.Result[smartsheet.Sheet]
			r.decode(t, &res)
			if res.Message != "SUCCESS" || res.Result.ID == 0 || len(res.Result.Columns) != 3 || !res.Result.Columns[0].Primary || res.Result.Columns[1].Type != "DATE" {
				t.Errorf("result = %+v", res)
			}
			if tt.inFolder != 0 {
				var f smartsheet.Folder
				call(t, s, "GET", "/folders/"+id(tt.inFolder), nil).decode(t, &f)
				if len(f.Sheets) != 1 || f.Sheets[0].ID != res.Result.ID {
					t.Errorf("folder sheets = %+v", f.Sheets)
				}
			}
		})
	}
}

func TestColumns(t *testing.T) {
	s := newTestServer(t, Options{})
	f := newFixture(t, s, 2)
	base := "/sheets/" + id(f.sheetID) + "/columns"
	var one smartsheet.Result[[]smartsheet.Column]
	call(t, s, "POST", base, `{"title":"Notes","type":"TEXT_NUMBER","index":1}`).decode(t, &one)
	if len(one.Result) != 1 || one.Result[0].Index != 1 || one.Result[0].ID == 0 || one.Version == 0 {
		t.Fatalf("add one = %+v", one)
	}
	var many smartsheet.Result[[]smartsheet.Column]
	call(t, s, "POST", base, `[{"title":"X"},{"title":"Y","type":"PICKLIST","options":["a","b"]}]`).decode(t, &many)
	if len(many.Result) != 2 || many.Result[1].Index != 7 || many.Result[1].Options[1] != "b" {
		t.Fatalf("add many = %+v", many)
	}
	if r := call(t, s, "POST", base, `{"title":"P","primary":true}`); r.status != 400 {
		t.Errorf("second primary status = %d", r.status)
	}
	var upd smartsheet.Result[smartsheet.Column]
	call(t, s, "PUT", base+"/"+id(one.Result[0].ID), `{"title":"Remarks","index":0,"width":200}`).decode(t, &upd)
	if upd.Result.Title != "Remarks" || upd.Result.Index != 0 || upd.Result.Width != 200 {
		t.Errorf("update = %+v", upd.Result)
	}
	if r := call(t, s, "PUT", base+"/"+id(f.colName), `{"type":"DATE"}`); r.status != 400 {
		t.Errorf("changing primary type status = %d", r.status)
	}
	if r := call(t, s, "PUT", base+"/99", `{"title":"z"}`); r.status != 404 {
		t.Errorf("unknown column status = %d", r.status)
	}
	var list smartsheet.IndexResult[smartsheet.Column]
	call(t, s, "GET", base, nil).decode(t, &list)
	if list.TotalCount != 8 || list.Data[0].Title != "Remarks" {
		t.Errorf("columns = %+v", list)
	}
}

func TestRowWrites(t *testing.T) {
	s := newTestServer(t, Options{Limits: Limits{Disabled: true}})
	f := newFixture(t, s, 3)
	path := "/sheets/" + id(f.sheetID) + "/rows"
	cell := func(col int64, v string) string { return fmt.Sprintf(`{"columnId":%d,"value":%s}`, col, v) }
	row := func(cells ...string) string { return `{"cells":[` + strings.Join(cells, ",") + `]}` }
	upd := func(rowID int64, cells ...string) string {
		return fmt.Sprintf(`{"id":%d,"cells":[%s]}`, rowID, strings.Join(cells, ","))
	}
	big := make([]string, 501)
	for i := range big {
		big[i] = row(cell(f.colName, `"x"`))
	}
	tests := []struct {
		name   string
		method string
		query  string
		body   string
		status int
		code   int
	}{
		{"add one object", "POST", "", row(cell(f.colName, `"new"`), cell(f.colDone, "true"), cell(f.colDue, `"2024-06-09"`), cell(f.colOwner, `"a@b.com"`)), 200, 0},
		{"add array", "POST", "", "[" + row(cell(f.colAmt, "1.50")) + "," + row(cell(f.colAmt, "2")) + "]", 200, 0},
		{"checkbox needs bool", "POST", "", row(cell(f.colDone, `"yes"`)), 400, 1042},
		{"date needs YYYY-MM-DD", "POST", "", row(cell(f.colDue, `"06/09/2024"`)), 400, 1042},
		{"date rejects number", "POST", "", row(cell(f.colDue, `20240609`)), 400, 1042},
		{"contact needs email", "POST", "", row(cell(f.colOwner, `"Joe"`)), 400, 1042},
		{"non-strict accepts text", "POST", "", fmt.Sprintf(`{"cells":[{"columnId":%d,"value":"someday","strict":false}]}`, f.colDue), 200, 0},
		{"unknown column", "POST", "", row(cell(42, `"x"`)), 400, 1036},
		{"value and formula", "POST", "", fmt.Sprintf(`{"cells":[{"columnId":%d,"value":1,"formula":"=1"}]}`, f.colAmt), 400, 1163},
		{"over 500 rows", "POST", "", "[" + strings.Join(big, ",") + "]", 400, 1018},
		{"mixed locations", "POST", "", `[{"toTop":true,"cells":[]},{"toBottom":true,"cells":[]}]`, 400, 1123},
		{"top and bottom", "POST", "", `{"toTop":true,"toBottom":true,"cells":[]}`, 400, 1062},
		{"unknown sibling", "POST", "", `{"siblingId":5,"cells":[]}`, 400, 1062},
		{"bad json", "POST", "", `[{"cells":`, 400, 1008},
		{"unknown sheet", "POST", "", row(), 404, 1006},
		{"update", "PUT", "", upd(f.rows[0], cell(f.colAmt, "10")), 200, 0},
		{"update unknown row", "PUT", "", upd(77, cell(f.colAmt, "10")), 404, 1006},
		{"update without id", "PUT", "", row(cell(f.colAmt, "10")), 400, 1012},
		{"update strict", "PUT", "", upd(f.rows[0], cell(f.colDone, "1")), 400, 1042},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := path
			if tt.name == "unknown sheet" {
				p = "/sheets/999/rows"
			}
			before, _ := s.Sheet(f.sheetID)
			r := call(t, s, tt.method, p+tt.query, tt.body)
			if r.status != tt.status {
				t.Fatalf("status = %d, want %d: %s", r.status, tt.status, r.body)
			}
			after, _ := s.Sheet(f.sheetID)
			if tt.code != 0 {
				if e := r.errBody(t); e.ErrorCode != tt.code {
					t.Errorf("errorCode = %d, want %d (%s)", e.ErrorCode, tt.code, e.Message)
				}
				if after.Version != before.Version || len(after.Rows) != len(before.Rows) {
					t.Errorf("failed write changed the sheet: version %d→%d, rows %d→%d", before.Version, after.Version, len(before.Rows), len(after.Rows))
				}
				return
			}
			var res smartsheet.Result[[]smartsheet.Row]
			r.decode(t, &res)
			if res.Message != "SUCCESS" || res.ResultCode != 0 || res.Version != before.Version+1 || len(res.Result) == 0 {
				t.Errorf("result = %+v (version before %d)", res, before.Version)
			}
		})
	}

	t.Run("values and display values", func(t *testing.T) {
		var res smartsheet.Result[[]smartsheet.Row]
		call(t, s, "POST", path, row(cell(f.colName, `"Big"`), cell(f.colAmt, "1234.50"), cell(f.colDone, "false"), cell(f.colDue, `"2024-06-09"`))).decode(t, &res)
		got := map[int64][2]string{}
		for _, c := range res.Result[0].Cells {
			got[c.ColumnID] = [2]string{c.Value.Text(), c.DisplayValue}
		}
		want := map[int64][2]string{
			f.colName: {"Big", "Big"}, f.colAmt: {"1234.50", "1234.50"}, f.colDone: {"false", ""},
			f.colDue: {"2024-06-09", "06/09/24"}, f.colOwner: {"", ""},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("cells (-want +got):\n%s", diff)
		}
	})

	t.Run("partial success", func(t *testing.T) {
		before, _ := s.Sheet(f.sheetID)
		body := "[" + row(cell(f.colName, `"good"`)) + "," + row(cell(99, `"bad"`)) + "," + row(cell(f.colDone, `"no"`)) + "]"
		r := call(t, s, "POST", path+"?allowPartialSuccess=true", body)
		var res smartsheet.Result[[]smartsheet.Row]
		r.decode(t, &res)
		if r.status != 200 || res.Message != "PARTIAL_SUCCESS" || res.ResultCode != 3 || len(res.Result) != 1 {
			t.Fatalf("partial = %d %s", r.status, r.body)
		}
		codes := []int{}
		for _, fi := range res.FailedItems {
			codes = append(codes, fi.Index*10000+fi.Error.ErrorCode)
		}
		if diff := cmp.Diff([]int{11036, 21042}, codes); diff != "" {
			t.Errorf("failedItems index*10000+code (-want +got):\n%s", diff)
		}
		after, _ := s.Sheet(f.sheetID)
		if len(after.Rows) != len(before.Rows)+1 {
			t.Errorf("rows %d → %d, want +1", len(before.Rows), len(after.Rows))
		}
	})

	t.Run("all or nothing", func(t *testing.T) {
		before, _ := s.Sheet(f.sheetID)
		body := "[" + row(cell(f.colName, `"good"`)) + "," + row(cell(99, `"bad"`)) + "]"
		r := call(t, s, "POST", path, body)
		if e := r.errBody(t); r.status != 400 || e.ErrorCode != 1036 || !strings.Contains(string(e.Detail), `"index":1`) {
			t.Errorf("= %d %s", r.status, r.body)
		}
		after, _ := s.Sheet(f.sheetID)
		if len(after.Rows) != len(before.Rows) {
			t.Errorf("rows changed %d → %d", len(before.Rows), len(after.Rows))
		}
	})
}

func TestRowLocations(t *testing.T) {
	s := newTestServer(t, Options{})
	f := newFixture(t, s, 3) // rows A B C
	path := "/sheets/" + id(f.sheetID) + "/rows"
	names := func() string {
		sh, _ := s.Sheet(f.sheetID)
		var out []string
		for _, r := range sh.Rows {
			n := r.Cell(f.colName).Value.Text()
			if r.ParentID != 0 {
				n = ">" + n
			}
			out = append(out, n)
		}
		return strings.Join(out, " ")
	}
	add := func(loc string, name string) int64 {
		t.Helper()
		var res smartsheet.Result[[]smartsheet.Row]
		r := call(t, s, "POST", path, fmt.Sprintf(`{%s"cells":[{"columnId":%d,"value":%q}]}`, loc, f.colName, name))
		r.decode(t, &res)
		if r.status != 200 {
			t.Fatalf("add %s: %s", loc, r.body)
		}
		return res.Result[0].ID
	}
	steps := []struct {
		name string
		do   func()
		want string
	}{
		{"toTop", func() { add(`"toTop":true,`, "T") }, "T row A row B row C"},
		{"toBottom", func() { add(`"toBottom":true,`, "Z") }, "T row A row B row C Z"},
		{"siblingId below", func() { add(fmt.Sprintf(`"siblingId":%d,`, f.rows[0]), "S") }, "T row A S row B row C Z"},
		{"siblingId above", func() { add(fmt.Sprintf(`"siblingId":%d,"above":true,`, f.rows[0]), "U") }, "T U row A S row B row C Z"},
		{"parentId", func() {
			add(fmt.Sprintf(`"parentId":%d,`, f.rows[1]), "K1")
			add(fmt.Sprintf(`"parentId":%d,`, f.rows[1]), "K2")
		}, "T U row A S row B >K1 >K2 row C Z"},
		{"move parent to top with children", func() {
			call(t, s, "PUT", path, fmt.Sprintf(`{"id":%d,"toTop":true}`, f.rows[1]))
		}, "row B >K1 >K2 T U row A S row C Z"},
		{"delete parent deletes children", func() {
			var res smartsheet.Result[[]int64]
			call(t, s, "DELETE", fmt.Sprintf("%s?ids=%d", path, f.rows[1]), nil).decode(t, &res)
			if len(res.Result) != 3 {
				t.Errorf("deleted = %v, want 3 ids", res.Result)
			}
		}, "T U row A S row C Z"},
	}
	for _, st := range steps {
		st.do()
		if got := names(); got != st.want {
			t.Fatalf("%s: rows = %q, want %q", st.name, got, st.want)
		}
	}
	if r := call(t, s, "DELETE", path+"?ids=5", nil); r.status != 404 {
		t.Errorf("delete unknown = %d", r.status)
	}
	if r := call(t, s, "DELETE", path+"?ids=5&ignoreRowsNotFound=true", nil); r.status != 200 {
		t.Errorf("delete unknown ignored = %d %s", r.status, r.body)
	}
}

func TestHistoryVersionsAndEvents(t *testing.T) {
	s := newTestServer(t, Options{})
	f := newFixture(t, s, 1)
	rowID := f.rows[0]
	var events []ChangeEvent
	var mu sync.Mutex
	s.OnChange(func(e ChangeEvent) { mu.Lock(); events = append(events, e); mu.Unlock() })
	path := "/sheets/" + id(f.sheetID) + "/rows"
	put := func(v string, agent string) smartsheet.Result[[]smartsheet.Row] {
		var res smartsheet.Result[[]smartsheet.Row]
		r := call(t, s, "PUT", path, fmt.Sprintf(`[{"id":%d,"cells":[{"columnId":%d,"value":%s}]}]`, rowID, f.colAmt, v), "Smartsheet-Change-Agent", agent)
		r.decode(t, &res)
		return res
	}
	s.AdvanceClock(time.Minute)
	r1 := put("5", "billing-audit")
	s.AdvanceClock(time.Minute)
	r2 := put("5", "billing-audit") // same value: a save, no history
	if r2.Version != r1.Version+1 {
		t.Errorf("same-value save version = %d, want %d", r2.Version, r1.Version+1)
	}
	if !r2.Result[0].ModifiedAt.Equal(t0.Add(2 * time.Minute)) {
		t.Errorf("same-value save modifiedAt = %v", r2.Result[0].ModifiedAt)
	}
	s.AdvanceClock(time.Minute)
	if _, err := s.SetCell(Edit{User: smartsheet.User{Name: "Dana", Email: "dana@crews.example.com"}, ChangeAgent: "field-app"}, f.sheetID, rowID, f.colAmt, smartsheet.IntValue(7)); err != nil {
		t.Fatal(err)
	}
	hpath := fmt.Sprintf("/sheets/%d/rows/%d/columns/%d/history", f.sheetID, rowID, f.colAmt)
	var h smartsheet.IndexResult[smartsheet.CellHistory]
	call(t, s, "GET", hpath, nil).decode(t, &h)
	type entry struct {
		Value, By string
		At        time.Time
	}
	var got []entry
	for _, e := range h.Data {
		got = append(got, entry{e.Value.Text(), e.ModifiedBy.Email, *e.ModifiedAt})
	}
	want := []entry{
		{"7", "dana@crews.example.com", t0.Add(3 * time.Minute)},
		{"5", DefaultUser.Email, t0.Add(time.Minute)},
		{"0", DefaultUser.Email, t0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("history newest first (-want +got):\n%s", diff)
	}
	call(t, s, "GET", hpath+"?pageSize=1&page=2", nil).decode(t, &h)
	if h.TotalCount != 3 || h.TotalPages != 3 || len(h.Data) != 1 || h.Data[0].Value.Text() != "5" {
		t.Errorf("history page 2 = %+v", h)
	}
	if r := call(t, s, "GET", fmt.Sprintf("/sheets/%d/rows/%d/columns/%d/history", f.sheetID, rowID, 5), nil); r.status != 400 {
		t.Errorf("history unknown column = %d", r.status)
	}
	mu.Lock()
	defer mu.Unlock()
	var cellEvents []string
	for _, e := range events {
		if e.ObjectType == ObjectCell {
			cellEvents = append(cellEvents, e.EventType+"/"+e.User.Email+"/"+e.ChangeAgent)
		}
	}
	wantEv := []string{"updated/" + DefaultUser.Email + "/billing-audit", "updated/dana@crews.example.com/field-app"}
	if diff := cmp.Diff(wantEv, cellEvents); diff != "" {
		t.Errorf("cell events (-want +got):\n%s", diff)
	}
	logged := s.Events(0)
	if len(logged) == 0 || logged[len(logged)-1].Seq != int64(len(logged)) {
		t.Errorf("event log seqs not 1..n: %d events", len(logged))
	}
}

func TestRateLimits(t *testing.T) {
	s := newTestServer(t, Options{Limits: Limits{PerMinute: 3, HistoryPerMinute: 2}})
	f := newFixture(t, s, 1)
	hpath := fmt.Sprintf("/sheets/%d/rows/%d/columns/%d/history", f.sheetID, f.rows[0], f.colAmt)
	for i := range 3 {
		if r := call(t, s, "GET", "/sheets", nil); r.status != 200 {
			t.Fatalf("call %d = %d", i, r.status)
		}
	}
	r := call(t, s, "GET", "/sheets", nil)
	if e := r.errBody(t); r.status != 429 || e.ErrorCode != 4003 || e.Message != "Rate limit exceeded." {
		t.Fatalf("over limit = %d %s", r.status, r.body)
	}
	if r := call(t, s, "GET", "/sheets", nil, "Authorization", "Bearer other"); r.status != 200 {
		t.Errorf("other token = %d, want its own budget", r.status)
	}
	for i := range 2 {
		if r := call(t, s, "GET", hpath, nil); r.status != 200 {
			t.Fatalf("history %d = %d", i, r.status)
		}
	}
	if r := call(t, s, "GET", hpath, nil); r.status != 429 {
		t.Errorf("history over its budget = %d", r.status)
	}
	if c := s.Counter(EndpointListSheets); c.Calls != 5 || c.RateLimited != 1 {
		t.Errorf("listSheets counter = %+v", c)
	}
	s.AdvanceClock(61 * time.Second)
	if r := call(t, s, "GET", "/sheets", nil); r.status != 200 {
		t.Errorf("after a minute = %d", r.status)
	}
	s.SetLimits(Limits{Disabled: true})
	for range 10 {
		if r := call(t, s, "GET", hpath, nil); r.status != 200 {
			t.Fatalf("disabled limits = %d", r.status)
		}
	}
}

func TestFaults(t *testing.T) {
	s := newTestServer(t, Options{Seed: 7})
	f := newFixture(t, s, 1)
	sheet := "/sheets/" + id(f.sheetID)
	s.FailNext(EndpointGetSheet, 2, FaultUnexpected)
	for i := range 2 {
		r := call(t, s, "GET", sheet, nil)
		if e := r.errBody(t); r.status != 500 || e.ErrorCode != 4004 {
			t.Fatalf("scripted fault %d = %d %s", i, r.status, r.body)
		}
	}
	if r := call(t, s, "GET", sheet, nil); r.status != 200 {
		t.Fatalf("after script = %d", r.status)
	}
	if got, want := s.Counter(EndpointGetSheet), (Counter{Calls: 3, Faults: 2}); got != want {
		t.Errorf("counter = %+v, want %+v", got, want)
	}
	kinds := []struct {
		kind   FaultKind
		status int
		code   int
	}{
		{Fault500, 500, 0}, {Fault502, 502, 0}, {Fault503, 503, 0},
		{FaultServerTimeout, 500, 4002}, {FaultMaintenance, 503, 4001}, {FaultRateLimited, 429, 4003},
	}
	for _, k := range kinds {
		t.Run(string(k.kind), func(t *testing.T) {
			s.FailNext(EndpointListSheets, 1, k.kind)
			r := call(t, s, "GET", "/sheets", nil)
			if r.status != k.status {
				t.Errorf("status = %d, want %d", r.status, k.status)
			}
			if k.code != 0 && r.errBody(t).ErrorCode != k.code {
				t.Errorf("body = %s, want errorCode %d", r.body, k.code)
			}
		})
	}
	t.Run("timeout until client gives up", func(t *testing.T) {
		s.FailNext(EndpointAddRows, 1, FaultTimeout)
		client := &http.Client{Timeout: 200 * time.Millisecond}
		req, _ := http.NewRequest("POST", s.URL()+sheet+"/rows", strings.NewReader(`{"cells":[]}`))
		req.Header.Set("Authorization", "Bearer t")
		start := time.Now()
		_, err := client.Do(req)
		if err == nil || time.Since(start) < 150*time.Millisecond {
			t.Errorf("err = %v after %v, want a client timeout", err, time.Since(start))
		}
	})
	t.Run("timeout with delay", func(t *testing.T) {
		s.SetFault(EndpointAddRows, Fault{Kind: FaultTimeout, Next: 1, Delay: 50 * time.Millisecond})
		r := call(t, s, "POST", sheet+"/rows", `{"cells":[]}`)
		if r.status != 500 || r.errBody(t).ErrorCode != 4002 {
			t.Errorf("= %d %s", r.status, r.body)
		}
	})
	t.Run("rate is deterministic", func(t *testing.T) {
		pattern := func() string {
			o := newTestServer(t, Options{Seed: 99})
			o.SetFault(EndpointAll, Fault{Kind: Fault503, Rate: 0.3})
			var b strings.Builder
			for range 40 {
				if call(t, o, "GET", "/users/me", nil).status == 503 {
					b.WriteByte('x')
				} else {
					b.WriteByte('.')
				}
			}
			if c := o.Counter(EndpointGetCurrentUser); c.Calls != 40 || int(c.Faults) != strings.Count(b.String(), "x") {
				t.Errorf("counter = %+v for %s", c, b.String())
			}
			return b.String()
		}
		a, b := pattern(), pattern()
		if a != b || !strings.Contains(a, "x") || !strings.Contains(a, ".") {
			t.Errorf("patterns %s vs %s", a, b)
		}
	})
	s.ResetCounters()
	if len(s.Counters()) != 0 || len(s.FaultCounts()) != 0 {
		t.Errorf("counters after reset = %v, %v", s.Counters(), s.FaultCounts())
	}
}

func TestFaultRateMix(t *testing.T) {
	s := newTestServer(t, Options{Seed: 5, Limits: Limits{Disabled: true}})
	kinds := []FaultKind{FaultRateLimited, FaultUnexpected, Fault502, Fault503}
	s.FaultRate(0.3, kinds...)
	statuses := map[int]int{}
	for range 400 {
		statuses[call(t, s, "GET", "/users/me", nil).status]++
	}
	c := s.Counter(EndpointGetCurrentUser)
	if c.Calls != 400 || c.Faults < 80 || c.Faults > 160 || int64(400-statuses[200]) != c.Faults {
		t.Errorf("counter = %+v, statuses %v; want 400 calls, about 120 faults, one per non-200", c, statuses)
	}
	var sum int64
	for k, n := range s.FaultCounts() {
		if !slices.Contains(kinds, k) {
			t.Errorf("fault kind %q injected, want one of %v", k, kinds)
		}
		sum += n
	}
	if sum != c.Faults || statuses[429] == 0 || statuses[502] == 0 || statuses[503] == 0 || statuses[500] == 0 {
		t.Errorf("FaultCounts() = %v (sum %d), statuses %v; want every kind, summing to %d", s.FaultCounts(), sum, statuses, c.Faults)
	}
	s.FaultRate(0)
	if len(s.Faults()) != 0 {
		t.Errorf("Faults() after FaultRate(0) = %v, want none", s.Faults())
	}
}

func TestConcurrentRequests(t *testing.T) {
	s := newTestServer(t, Options{Limits: Limits{Disabled: true}})
	f := newFixture(t, s, 20)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 10 {
				if i%2 == 0 {
					call(t, s, "GET", "/sheets/"+id(f.sheetID), nil)
				} else {
					call(t, s, "PUT", "/sheets/"+id(f.sheetID)+"/rows", fmt.Sprintf(`{"id":%d,"cells":[{"columnId":%d,"value":%d}]}`, f.rows[j], f.colAmt, i*100+j))
				}
			}
		}()
	}
	wg.Wait()
	sh, _ := s.Sheet(f.sheetID)
	if sh.Version != 1+40 {
		t.Errorf("version = %d, want 41 (1 add + 40 updates)", sh.Version)
	}
}
