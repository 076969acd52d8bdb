package smartsheet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestGetSheetQueryAndUnchanged(t *testing.T) {
	since := time.Date(2024, 6, 1, 0, 0, 0, 0, time.FixedZone("x", 3600))
	v := int64(41)
	tests := []struct {
		name          string
		opts          GetSheetOptions
		reply         string
		wantQuery     string
		wantUnchanged bool
		wantVersion   int64
	}{
		{name: "plain", reply: `{"id":1,"name":"S","version":3}`, wantVersion: 3},
		{name: "all options", opts: GetSheetOptions{ColumnIDs: []int64{1, 2}, RowIDs: []int64{9}, RowsModifiedSince: &since,
			Include: []string{IncludeWriterInfo, IncludeRowPermalink}, IfVersionAfter: &v, Page: 2, PageSize: 50},
			reply:       `{"id":1,"name":"S","version":42}`,
			wantQuery:   "columnIds=1%2C2&ifVersionAfter=41&include=writerInfo%2CrowPermalink&page=2&pageSize=50&rowIds=9&rowsModifiedSince=2024-05-31T23%3A00%3A00Z",
			wantVersion: 42},
		{name: "unchanged", opts: GetSheetOptions{IfVersionAfter: &v}, reply: `{"version":41}`,
			wantQuery: "ifVersionAfter=41", wantUnchanged: true, wantVersion: 41},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &scripted{replies: []reply{{200, tt.reply, nil}}}
			tc := mustTestClient(t, srv)
			s, unchanged, err := tc.GetSheet(context.Background(), 1, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if unchanged != tt.wantUnchanged || s.Version != tt.wantVersion {
				t.Errorf("GetSheet() = version %d unchanged %v, want %d %v", s.Version, unchanged, tt.wantVersion, tt.wantUnchanged)
			}
			if got := srv.requests()[0].query; got != tt.wantQuery {
				t.Errorf("GetSheet() query = %q, want %q", got, tt.wantQuery)
			}
		})
	}
}

// pagedSheet serves a sheet of n rows page by page; bump changes the version
// after the given page.
func pagedSheet(tb testing.TB, n int, bump int, calls *atomic.Int64) http.Handler {
	tb.Helper()
	full := sheetJSON(tb, n)
	var s Sheet
	if err := json.Unmarshal(full, &s); err != nil {
		tb.Fatal(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		size, _ := strconv.Atoi(r.URL.Query().Get("pageSize"))
		lo := min((page-1)*size, max(0, (len(s.Rows)-1)/size*size)) // past the end: the last page
		hi := min(lo+size, len(s.Rows))
		p := s
		p.Rows = s.Rows[lo:hi]
		if bump > 0 && page > bump {
			p.Version++
		}
		_ = json.NewEncoder(w).Encode(p)
	})
}

func TestForEachSheetPage(t *testing.T) {
	tests := []struct {
		name      string
		rows      int
		pageSize  int
		bump      int
		wantPages []int
		wantErr   error
	}{
		{name: "1234 rows by 500", rows: 1234, pageSize: 500, wantPages: []int{500, 500, 234}},
		{name: "exact pages", rows: 1000, pageSize: 500, wantPages: []int{500, 500}},
		{name: "default page size", rows: 700, wantPages: []int{500, 200}},
		{name: "empty sheet", rows: 0, pageSize: 100, wantPages: []int{0}},
		{name: "version changes", rows: 1234, pageSize: 500, bump: 1, wantPages: []int{500}, wantErr: ErrSheetChanged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int64
			tc := mustTestClient(t, pagedSheet(t, tt.rows, tt.bump, &calls))
			var pages []int
			next := int64(7000000000000000)
			err := tc.ForEachSheetPage(context.Background(), 1, GetSheetOptions{PageSize: tt.pageSize}, func(s *Sheet) error {
				pages = append(pages, len(s.Rows))
				if len(s.Columns) != 10 {
					t.Errorf("page has %d columns, want 10", len(s.Columns))
				}
				for _, r := range s.Rows {
					if r.ID != next {
						t.Fatalf("row id = %d, want %d (rows out of order or repeated)", r.ID, next)
					}
					next++
				}
				return nil
			})
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("ForEachSheetPage() = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.wantPages, pages); diff != "" {
				t.Errorf("pages (-want +got):\n%s", diff)
			}
		})
	}
}

// TestForEachSheetPageMemory checks that pages are not retained: the live
// heap at the last of 40 pages is about the heap at the second one.
func TestForEachSheetPageMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("memory test")
	}
	var calls atomic.Int64
	tc := mustTestClient(t, pagedSheet(t, 20000, 0, &calls))
	var at2, atLast uint64
	page := 0
	err := tc.ForEachSheetPage(context.Background(), 1, GetSheetOptions{PageSize: 500}, func(s *Sheet) error {
		page++
		if page == 2 || page == 40 {
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if page == 2 {
				at2 = ms.HeapAlloc
			} else {
				atLast = ms.HeapAlloc
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if page != 40 {
		t.Fatalf("pages = %d, want 40", page)
	}
	// One 500-row page decodes to about 1.5 MB; retaining 38 pages would add ~60 MB.
	if growth := int64(atLast) - int64(at2); growth > 8<<20 {
		t.Errorf("heap grew by %d MB over 38 pages, want < 8 MB (pages retained?)", growth>>20)
	}
	t.Logf("heap at page 2: %.1f MB, at page 40: %.1f MB", float64(at2)/(1<<20), float64(atLast)/(1<<20))
}

func TestListSheetsWalksPages(t *testing.T) {
	srv := &scripted{replies: []reply{
		{200, `{"pageNumber":1,"pageSize":2,"totalPages":2,"totalCount":3,"data":[{"id":1,"name":"a"},{"id":2,"name":"b"}]}`, nil},
		{200, `{"pageNumber":2,"pageSize":2,"totalPages":2,"totalCount":3,"data":[{"id":3,"name":"c"}]}`, nil},
	}}
	tc := mustTestClient(t, srv)
	since := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	got, err := tc.ListSheets(context.Background(), ListSheetsOptions{ModifiedSince: &since})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[2].Name != "c" {
		t.Errorf("ListSheets() = %+v, want 3 sheets", got)
	}
	reqs := srv.requests()
	want := []string{"modifiedSince=2024-06-01T00%3A00%3A00Z", "modifiedSince=2024-06-01T00%3A00%3A00Z&page=2"}
	if diff := cmp.Diff(want, []string{reqs[0].query, reqs[1].query}); diff != "" {
		t.Errorf("queries (-want +got):\n%s", diff)
	}
}

func TestCellHistoryAllPagesNewestFirst(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/2.0/sheets/1/rows/2/columns/3/history" {
			http.NotFound(w, r)
			return
		}
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		page = max(page, 1)
		var data []string
		for i := range 2 {
			n := (page-1)*2 + i
			data = append(data, fmt.Sprintf(`{"columnId":3,"value":%d.50,"displayValue":"x","modifiedAt":"2024-06-%02dT10:00:00Z","modifiedBy":{"name":"U","email":"u@x"}}`, n, 20-n))
		}
		fmt.Fprintf(w, `{"pageNumber":%d,"pageSize":2,"totalPages":3,"totalCount":6,"data":[%s]}`, page, strings.Join(data, ","))
	})
	tc := mustTestClient(t, h)
	got, err := tc.CellHistory(context.Background(), 1, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	for _, e := range got {
		values = append(values, e.Value.Text())
	}
	if diff := cmp.Diff([]string{"0.50", "1.50", "2.50", "3.50", "4.50", "5.50"}, values); diff != "" {
		t.Errorf("CellHistory() values (-want +got):\n%s", diff)
	}
	if st := tc.Stats(); st.CellHistoryCalls != 3 {
		t.Errorf("Stats().CellHistoryCalls = %d, want 3", st.CellHistoryCalls)
	}
}

func TestDiscoverSheets(t *testing.T) {
	h := http.NewServeMux()
	h.HandleFunc("GET /2.0/workspaces/10", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"id":10,"name":"Field Ops","sheets":[{"id":1,"name":"top"}],"folders":[{"id":20,"name":"2024"}]}`)
	})
	h.HandleFunc("GET /2.0/folders/20", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"id":20,"name":"2024","sheets":[{"id":2,"name":"jan"}],"folders":[{"id":30,"name":"Q1"}]}`)
	})
	h.HandleFunc("GET /2.0/folders/30", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"id":30,"name":"Q1","sheets":[{"id":3,"name":"feb"},{"id":1,"name":"top"}]}`)
	})
	tc := mustTestClient(t, h)
	got, err := tc.DiscoverSheets(context.Background(), []int64{30}, []int64{10})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, s := range got {
		lines = append(lines, fmt.Sprintf("%d %s", s.ID, strings.Join(s.Path, "/")))
	}
	want := []string{"1 Field Ops", "2 Field Ops/2024", "3 Field Ops/2024/Q1"}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("DiscoverSheets() (-want +got):\n%s", diff)
	}
	if n := tc.Stats().Requests; n != 3 {
		t.Errorf("requests = %d, want 3 (folder 30 read once)", n)
	}
}

func TestAttachFile(t *testing.T) {
	var got []recorded
	calls := 0
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got = append(got, recorded{method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: body})
		calls++
		if calls == 1 {
			w.WriteHeader(500)
			fmt.Fprint(w, apiErr(4004, "Unexpected error"))
			return
		}
		fmt.Fprint(w, `{"message":"SUCCESS","resultCode":0,"result":{"id":77,"name":"Audit report #2.xlsx","attachmentType":"FILE","mimeType":"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet","sizeInKb":1,"parentType":"SHEET","parentId":1,"createdAt":"2024-06-05T14:53:31Z"}}`)
	})
	tc := mustTestClient(t, h)
	content := bytes.Repeat([]byte("xlsx"), 300)
	ct := "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	tests := []struct {
		name     string
		do       func() (*Attachment, error)
		wantPath string
	}{
		{"sheet", func() (*Attachment, error) {
			return tc.AttachFile(context.Background(), 1, "Audit report #2.xlsx", ct, bytes.NewReader(content))
		}, "/2.0/sheets/1/attachments"},
		{"row", func() (*Attachment, error) {
			return tc.AttachFileToRow(context.Background(), 1, 5, "Audit report #2.xlsx", ct, bytes.NewReader(content))
		}, "/2.0/sheets/1/rows/5/attachments"},
		{"new version", func() (*Attachment, error) {
			return tc.AttachNewVersion(context.Background(), 1, 77, "Audit report #2.xlsx", ct, bytes.NewReader(content))
		}, "/2.0/sheets/1/attachments/77/versions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, calls = nil, 0
			a, err := tt.do()
			if err != nil {
				t.Fatal(err)
			}
			if a.ID != 77 || a.AttachmentType != "FILE" {
				t.Errorf("attachment = %+v, want id 77 FILE", a)
			}
			if len(got) != 2 {
				t.Fatalf("requests = %d, want 2 (one retry)", len(got))
			}
			for _, r := range got {
				checks := map[string]string{
					"Content-Disposition":     `attachment; filename="Audit%20report%20%232.xlsx"`,
					"Content-Type":            ct,
					"Content-Length":          strconv.Itoa(len(content)),
					"Smartsheet-Change-Agent": "billing-audit-test",
				}
				for k, want := range checks {
					if v := r.header.Get(k); v != want {
						t.Errorf("header %s = %q, want %q", k, v, want)
					}
				}
				if r.path != tt.wantPath || !bytes.Equal(r.body, content) {
					t.Errorf("request %s with %d bytes, want %s with the %d-byte file", r.path, len(r.body), tt.wantPath, len(content))
				}
			}
		})
	}
}

func TestWebhooks(t *testing.T) {
	h := http.NewServeMux()
	var created, updated []byte
	h.HandleFunc("POST /2.0/webhooks", func(w http.ResponseWriter, r *http.Request) {
		created, _ = io.ReadAll(r.Body)
		fmt.Fprint(w, `{"message":"SUCCESS","resultCode":0,"result":{"id":5,"name":"audit","scope":"sheet","scopeObjectId":9,"events":["*.*"],"version":1,"enabled":false,"status":"NEW_NOT_VERIFIED","sharedSecret":"s1","callbackUrl":"https://x/cb"}}`)
	})
	h.HandleFunc("PUT /2.0/webhooks/5", func(w http.ResponseWriter, r *http.Request) {
		updated, _ = io.ReadAll(r.Body)
		fmt.Fprint(w, `{"message":"SUCCESS","resultCode":0,"result":{"id":5,"enabled":true,"status":"ENABLED"}}`)
	})
	h.HandleFunc("GET /2.0/webhooks/5", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"id":5,"status":"ENABLED","enabled":true}`)
	})
	h.HandleFunc("GET /2.0/webhooks", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("page") == "2" {
			fmt.Fprint(w, `{"pageNumber":2,"totalPages":2,"totalCount":2,"data":[{"id":6}]}`)
			return
		}
		fmt.Fprint(w, `{"pageNumber":1,"totalPages":2,"totalCount":2,"data":[{"id":5}]}`)
	})
	h.HandleFunc("POST /2.0/webhooks/5/resetSharedSecret", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"message":"SUCCESS","resultCode":0,"result":{"sharedSecret":"s2"}}`)
	})
	h.HandleFunc("DELETE /2.0/webhooks/5", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"message":"SUCCESS","resultCode":0}`)
	})
	tc := mustTestClient(t, h)
	ctx := context.Background()
	wh, err := tc.CreateWebhook(ctx, Webhook{Name: "audit", CallbackURL: "https://x/cb", ScopeObjectID: 9})
	if err != nil || wh.SharedSecret != "s1" || wh.Status != WebhookNewNotVerified {
		t.Fatalf("CreateWebhook() = %+v, %v", wh, err)
	}
	if want := `{"name":"audit","callbackUrl":"https://x/cb","scope":"sheet","scopeObjectId":9,"events":["*.*"],"version":1}`; string(created) != want {
		t.Errorf("create body = %s, want %s", created, want)
	}
	if wh, err := tc.SetWebhookEnabled(ctx, 5, true); err != nil || wh.Status != WebhookEnabled {
		t.Errorf("SetWebhookEnabled() = %+v, %v", wh, err)
	}
	if string(updated) != `{"enabled":true}` {
		t.Errorf("update body = %s, want {\"enabled\":true}", updated)
	}
	if wh, err := tc.GetWebhook(ctx, 5); err != nil || wh.ID != 5 {
		t.Errorf("GetWebhook() = %+v, %v", wh, err)
	}
	if all, err := tc.ListWebhooks(ctx); err != nil || len(all) != 2 {
		t.Errorf("ListWebhooks() = %+v, %v, want 2", all, err)
	}
	if s, err := tc.ResetSharedSecret(ctx, 5); err != nil || s != "s2" {
		t.Errorf("ResetSharedSecret() = %q, %v, want s2", s, err)
	}
	if err := tc.DeleteWebhook(ctx, 5); err != nil {
		t.Errorf("DeleteWebhook() = %v", err)
	}
}
