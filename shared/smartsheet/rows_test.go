package smartsheet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// rowServer answers add/update/delete rows: each row gets id 1000+n where n
// is the number in its first cell's text; rows whose first cell is "bad" fail
// (partial success) or fail the request (all-or-nothing).
type rowServer struct {
	mu       sync.Mutex
	sizes    []int
	queries  []string
	firstIdx []string
}

func (s *rowServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queries = append(s.queries, r.URL.RawQuery)
	if r.Method == http.MethodDelete {
		ids := strings.Split(r.URL.Query().Get("ids"), ",")
		s.sizes = append(s.sizes, len(ids))
		fmt.Fprintf(w, `{"message":"SUCCESS","resultCode":0,"result":[%s]}`, strings.Join(ids, ","))
		return
	}
	var rows []Row
	if err := json.NewDecoder(r.Body).Decode(&rows); err != nil {
		w.WriteHeader(400)
		fmt.Fprint(w, apiErr(1008, "Unable to parse request."))
		return
	}
	s.sizes = append(s.sizes, len(rows))
	s.firstIdx = append(s.firstIdx, rows[0].Cells[0].Value.Text())
	partial := r.URL.Query().Get("allowPartialSuccess") == "true"
	var ok []Row
	var failed []FailedItem
	for i, row := range rows {
		text := row.Cells[0].Value.Text()
		if text == "bad" {
			if !partial {
				w.WriteHeader(400)
				fmt.Fprintf(w, `{"errorCode":1042,"message":"bad value","refId":"x","detail":{"index":%d}}`, i)
				return
			}
			failed = append(failed, FailedItem{Index: i, Error: ErrorBody{ErrorCode: 1042, Message: "bad value"}})
			continue
		}
		var n int64
		fmt.Sscan(text, &n)
		row.ID = 1000 + n
		ok = append(ok, row)
	}
	res := Result[[]Row]{Message: "SUCCESS", Result: ok, Version: int64(len(s.sizes)), FailedItems: failed}
	if len(failed) > 0 {
		res.Message, res.ResultCode = "PARTIAL_SUCCESS", ResultPartialSuccess
	}
	_ = json.NewEncoder(w).Encode(res)
}

func numberedRows(n int, bad ...int) []Row {
	isBad := map[int]bool{}
	for _, b := range bad {
		isBad[b] = true
	}
	rows := make([]Row, n)
	for i := range rows {
		v := StringValue(fmt.Sprint(i))
		if isBad[i] {
			v = StringValue("bad")
		}
		rows[i] = Row{Cells: []Cell{{ColumnID: 1, Value: v}}}
	}
	return rows
}

func rowIDs(rows []Row) []int64 {
	var out []int64
	for _, r := range rows {
		out = append(out, r.ID)
	}
	return out
}

func seq(from, to int64, skip ...int64) []int64 {
	skipped := map[int64]bool{}
	for _, s := range skip {
		skipped[s] = true
	}
	var out []int64
	for i := from; i < to; i++ {
		if !skipped[i] {
			out = append(out, i)
		}
	}
	return out
}

func TestAddRowsSplits(t *testing.T) {
	tests := []struct {
		name       string
		rows       int
		bad        []int
		opts       AddRowsOptions
		wantSizes  []int
		wantFirst  []string // first row of each request
		wantFailed []int
		wantQuery  string
	}{
		{name: "1234 rows to bottom", rows: 1234, opts: AddRowsOptions{ToBottom: true},
			wantSizes: []int{500, 500, 234}, wantFirst: []string{"0", "500", "1000"}},
		{name: "1234 rows to top go last chunk first", rows: 1234, opts: AddRowsOptions{ToTop: true},
			wantSizes: []int{234, 500, 500}, wantFirst: []string{"1000", "500", "0"}},
		{name: "exactly 500", rows: 500, wantSizes: []int{500}, wantFirst: []string{"0"}},
		{name: "partial success keeps caller indexes", rows: 1234, bad: []int{3, 499, 500, 1233},
			opts:      AddRowsOptions{ToBottom: true, AllowPartialSuccess: true},
			wantSizes: []int{500, 500, 234}, wantFirst: []string{"0", "bad", "1000"}, wantFailed: []int{3, 499, 500, 1233},
			wantQuery: "allowPartialSuccess=true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &rowServer{}
			tc := mustTestClient(t, srv)
			res, err := tc.AddRows(context.Background(), 5, numberedRows(tt.rows, tt.bad...), tt.opts)
			if err != nil {
				t.Fatalf("AddRows() error: %v", err)
			}
			if diff := cmp.Diff(tt.wantSizes, srv.sizes); diff != "" {
				t.Errorf("request sizes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantFirst, srv.firstIdx); diff != "" {
				t.Errorf("first row of each request (-want +got):\n%s", diff)
			}
			var failed []int
			for _, f := range res.Failed {
				failed = append(failed, f.Index)
				if f.Error.ErrorCode != 1042 {
					t.Errorf("failed item %d code = %d, want 1042", f.Index, f.Error.ErrorCode)
				}
			}
			if diff := cmp.Diff(tt.wantFailed, failed); diff != "" {
				t.Errorf("failed indexes (-want +got):\n%s", diff)
			}
			bad := make([]int64, len(tt.bad))
			for i, b := range tt.bad {
				bad[i] = 1000 + int64(b)
			}
			if diff := cmp.Diff(seq(1000, 1000+int64(tt.rows), bad...), rowIDs(res.Rows)); diff != "" {
				t.Errorf("added rows not in caller order (-want +got):\n%s", diff)
			}
			for _, q := range srv.queries {
				if q != tt.wantQuery {
					t.Errorf("query = %q, want %q", q, tt.wantQuery)
				}
			}
		})
	}
}

func TestAddRowsAllOrNothingStops(t *testing.T) {
	srv := &rowServer{}
	tc := mustTestClient(t, srv)
	rows := numberedRows(1234, 700)
	res, err := tc.AddRows(context.Background(), 5, rows, AddRowsOptions{})
	var be *BatchError
	if !errors.As(err, &be) || be.Offset != 500 || be.Count != 500 || ErrorCode(err) != 1042 {
		t.Fatalf("AddRows() = %v, want BatchError rows 500-999 with errorCode 1042", err)
	}
	if len(res.Rows) != 500 || len(srv.sizes) != 2 {
		t.Errorf("AddRows() added %d rows in %d requests, want 500 in 2", len(res.Rows), len(srv.sizes))
	}
	if rows[0].ToBottom || rows[0].ID != 0 {
		t.Error("AddRows() modified the caller's rows")
	}
}

func TestUpdateAndDeleteRowsSplit(t *testing.T) {
	srv := &rowServer{}
	tc := mustTestClient(t, srv)
	ctx := context.Background()
	rows := numberedRows(1001)
	for i := range rows {
		rows[i].ID = int64(i + 1)
	}
	if _, err := tc.UpdateRows(ctx, 5, rows, UpdateRowsOptions{}); err != nil {
		t.Fatal(err)
	}
	ids := seq(1, 451)
	deleted, err := tc.DeleteRows(ctx, 5, ids, DeleteRowsOptions{IgnoreRowsNotFound: true})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{500, 500, 1, 200, 200, 50}, srv.sizes); diff != "" {
		t.Errorf("request sizes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(ids, deleted); diff != "" {
		t.Errorf("DeleteRows() ids (-want +got):\n%s", diff)
	}
	if !strings.Contains(srv.queries[3], "ignoreRowsNotFound=true") {
		t.Errorf("delete query = %q, want ignoreRowsNotFound=true", srv.queries[3])
	}
	if _, err := tc.UpdateRows(ctx, 5, []Row{{}}, UpdateRowsOptions{}); err == nil {
		t.Error("UpdateRows(row without id) = nil error, want one")
	}
}
