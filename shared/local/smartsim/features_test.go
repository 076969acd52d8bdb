package smartsim

import (
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/smartsheet"
	"github.com/google/go-cmp/cmp"
)

func TestAttachments(t *testing.T) {
	s := newTestServer(t, Options{})
	f := newFixture(t, s, 2)
	base := "/sheets/" + id(f.sheetID) + "/attachments"
	upload := func(path, name string, data []byte) smartsheet.Attachment {
		t.Helper()
		r := call(t, s, "POST", path, data, "Content-Type", "text/csv",
			"Content-Disposition", `attachment; filename="`+name+`"`)
		var res smartsheet.Result[smartsheet.Attachment]
		r.decode(t, &res)
		if r.status != 200 || res.Result.ID == 0 {
			t.Fatalf("upload = %d %s", r.status, r.body)
		}
		return res.Result
	}
	a := upload(base, "week%2023%20report.csv", []byte("wr,qty\n90412337,3\n"))
	if a.Name != "week 23 report.csv" || a.AttachmentType != "FILE" || a.ParentType != "SHEET" || a.MimeType != "text/csv" || a.SizeInKb != 1 {
		t.Errorf("attachment = %+v", a)
	}
	rowA := upload(fmt.Sprintf("/sheets/%d/rows/%d/attachments", f.sheetID, f.rows[1]), "photo.jpg", []byte{0xff, 0xd8})
	if rowA.ParentType != "ROW" || rowA.ParentID != f.rows[1] {
		t.Errorf("row attachment = %+v", rowA)
	}

	// Multipart upload.
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("file", "multi.txt")
	fw.Write([]byte("hello multipart"))
	mw.Close()
	r := call(t, s, "POST", base, buf.Bytes(), "Content-Type", mw.FormDataContentType())
	var mres smartsheet.Result[smartsheet.Attachment]
	r.decode(t, &mres)
	if data, _, _ := s.AttachmentData(mres.Result.ID); string(data) != "hello multipart" || mres.Result.Name != "multi.txt" {
		t.Errorf("multipart = %s, %q", r.body, data)
	}

	// Link attachment (JSON body).
	var lres smartsheet.Result[smartsheet.Attachment]
	call(t, s, "POST", base, `{"name":"Search","attachmentType":"LINK","url":"http://example.com"}`).decode(t, &lres)
	if lres.Result.AttachmentType != "LINK" || lres.Result.URL != "http://example.com" {
		t.Errorf("link = %+v", lres.Result)
	}

	// New version, version list, latest-only listing.
	var vres smartsheet.Result[smartsheet.Attachment]
	r = call(t, s, "POST", fmt.Sprintf("%s/%d/versions", base, a.ID), []byte("wr,qty\n90412337,4\n"),
		"Content-Type", "text/csv", "Content-Disposition", `attachment; filename="week 23 report.csv"`)
	r.decode(t, &vres)
	if r.status != 200 || vres.Result.ID == a.ID {
		t.Fatalf("new version = %d %s", r.status, r.body)
	}
	var versions smartsheet.IndexResult[smartsheet.Attachment]
	call(t, s, "GET", fmt.Sprintf("%s/%d/versions", base, a.ID), nil).decode(t, &versions)
	if versions.TotalCount != 2 {
		t.Errorf("versions = %+v", versions)
	}
	var list smartsheet.IndexResult[smartsheet.Attachment]
	call(t, s, "GET", base, nil).decode(t, &list)
	if list.TotalCount != 4 {
		t.Errorf("sheet attachments = %d, want 4 (old version hidden)", list.TotalCount)
	}
	call(t, s, "GET", fmt.Sprintf("/sheets/%d/rows/%d/attachments", f.sheetID, f.rows[1]), nil).decode(t, &list)
	if list.TotalCount != 1 {
		t.Errorf("row attachments = %d", list.TotalCount)
	}

	// GET returns a download URL serving the bytes.
	var got smartsheet.Attachment
	call(t, s, "GET", fmt.Sprintf("%s/%d", base, vres.Result.ID), nil).decode(t, &got)
	if got.URL == "" || got.URLExpiresInMillis == 0 {
		t.Fatalf("get = %+v", got)
	}
	res, err := http.Get(got.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(body) != "wr,qty\n90412337,4\n" {
		t.Errorf("download = %q", body)
	}

	errs := []struct {
		name, path string
		body       any
		headers    []string
		status     int
	}{
		{"no filename", base, []byte("x"), []string{"Content-Type", "text/plain"}, 400},
		{"unknown row", fmt.Sprintf("/sheets/%d/rows/5/attachments", f.sheetID), []byte("x"), []string{"Content-Type", "text/plain", "Content-Disposition", `attachment; filename="a"`}, 404},
		{"unknown attachment", base + "/5/versions", []byte("x"), []string{"Content-Type", "text/plain", "Content-Disposition", `attachment; filename="a"`}, 404},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			if r := call(t, s, "POST", tt.path, tt.body, tt.headers...); r.status != tt.status {
				t.Errorf("= %d %s, want %d", r.status, r.body, tt.status)
			}
		})
	}
}

func TestWebhooks(t *testing.T) {
	s := newTestServer(t, Options{})
	f := newFixture(t, s, 1)
	body := fmt.Sprintf(`{"name":"audit","callbackUrl":"https://hooks.example.com/ss","scope":"sheet","scopeObjectId":%d,"events":["*.*"],"version":1}`, f.sheetID)
	var created smartsheet.Result[smartsheet.Webhook]
	call(t, s, "POST", "/webhooks", body).decode(t, &created)
	w := created.Result
	if w.ID == 0 || w.SharedSecret == "" || w.Enabled == nil || *w.Enabled || w.Status != smartsheet.WebhookNewNotVerified {
		t.Fatalf("created = %+v", w)
	}
	var list smartsheet.IndexResult[smartsheet.Webhook]
	call(t, s, "GET", "/webhooks", nil).decode(t, &list)
	if list.TotalCount != 1 || list.Data[0].ID != w.ID {
		t.Errorf("list = %+v", list)
	}
	var upd smartsheet.Result[smartsheet.Webhook]
	call(t, s, "PUT", "/webhooks/"+id(w.ID), `{"enabled":true}`).decode(t, &upd)
	// Callbacks go only to loopback URLs: this one cannot be verified (the
	// handshake itself is tested in webhook_test.go).
	if *upd.Result.Enabled || upd.Result.Status != smartsheet.WebhookDisabledVerificationFailed || upd.Result.Name != "audit" {
		t.Errorf("enabled = %+v", upd.Result)
	}
	var reset smartsheet.Result[struct {
		SharedSecret string `json:"sharedSecret"`
		WebhookID    int64  `json:"webhookId"`
	}]
	call(t, s, "POST", "/webhooks/"+id(w.ID)+"/resetSharedSecret", nil).decode(t, &reset)
	if reset.Result.SharedSecret == "" || reset.Result.SharedSecret == w.SharedSecret || reset.Result.WebhookID != w.ID {
		t.Errorf("reset = %+v", reset)
	}
	var got smartsheet.Webhook
	call(t, s, "GET", "/webhooks/"+id(w.ID), nil).decode(t, &got)
	if got.SharedSecret != reset.Result.SharedSecret {
		t.Errorf("secret after reset = %q", got.SharedSecret)
	}
	if r := call(t, s, "DELETE", "/webhooks/"+id(w.ID), nil); r.status != 200 {
		t.Errorf("delete = %d", r.status)
	}
	if r := call(t, s, "GET", "/webhooks/"+id(w.ID), nil); r.status != 404 {
		t.Errorf("get deleted = %d", r.status)
	}
	bad := []struct{ name, body string }{
		{"no callback", fmt.Sprintf(`{"name":"a","scope":"sheet","scopeObjectId":%d,"events":["*.*"],"version":1}`, f.sheetID)},
		{"bad scope", fmt.Sprintf(`{"name":"a","callbackUrl":"https://x","scope":"workspace","scopeObjectId":%d,"events":["*.*"],"version":1}`, f.sheetID)},
		{"bad events", fmt.Sprintf(`{"name":"a","callbackUrl":"https://x","scope":"sheet","scopeObjectId":%d,"events":["row.created"],"version":1}`, f.sheetID)},
	}
	for _, tt := range bad {
		if r := call(t, s, "POST", "/webhooks", tt.body); r.status != 400 {
			t.Errorf("%s = %d %s", tt.name, r.status, r.body)
		}
	}
	if r := call(t, s, "POST", "/webhooks", `{"name":"a","callbackUrl":"https://x","scope":"sheet","scopeObjectId":5,"events":["*.*"],"version":1}`); r.status != 404 {
		t.Errorf("unknown sheet = %d", r.status)
	}
}

func admin(t *testing.T, s *Server, method, path string, body string) resp {
	t.Helper()
	req, _ := http.NewRequest(method, s.AdminURL()+path, strings.NewReader(body))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("admin %s %s = %d %s", method, path, res.StatusCode, data)
	}
	return resp{status: res.StatusCode, body: data}
}

func TestAdminAPI(t *testing.T) {
	s := newTestServer(t, Options{})
	f := newFixture(t, s, 2)
	at := t0.Add(-48 * time.Hour)
	admin(t, s, "POST", "/cells", fmt.Sprintf(`{"sheetId":%d,"rowId":%d,"columnId":%d,"value":42,"user":{"name":"Dana","email":"dana@crews.example.com"},"at":%q,"changeAgent":"crew-app"}`,
		f.sheetID, f.rows[0], f.colAmt, at.Format(time.RFC3339)))
	admin(t, s, "POST", "/automation", fmt.Sprintf(`{"sheetId":%d,"rowId":%d,"columnId":%d,"value":true}`, f.sheetID, f.rows[0], f.colDone))
	h, _ := s.CellHistory(f.sheetID, f.rows[0], f.colAmt)
	if h[0].Value.Text() != "42" || h[0].ModifiedBy.Email != "dana@crews.example.com" || !h[0].ModifiedAt.Equal(at) {
		t.Errorf("admin set cell history = %+v", h[0])
	}
	h, _ = s.CellHistory(f.sheetID, f.rows[0], f.colDone)
	if h[0].ModifiedBy.Email != AutomationUser.Email {
		t.Errorf("automation history = %+v", h[0])
	}
	var added []smartsheet.Row
	admin(t, s, "POST", "/rows", fmt.Sprintf(`{"sheetId":%d,"rows":[{"cells":[{"columnId":%d,"value":"new"}]}],"user":{"name":"Luis","email":"luis@crews.example.com"}}`, f.sheetID, f.colName)).decode(t, &added)
	if len(added) != 1 {
		t.Fatalf("added = %+v", added)
	}
	admin(t, s, "POST", "/rows/delete", fmt.Sprintf(`{"sheetId":%d,"ids":[%d]}`, f.sheetID, added[0].ID))
	sh, _ := s.Sheet(f.sheetID)
	if len(sh.Rows) != 2 {
		t.Errorf("rows after admin add+delete = %d", len(sh.Rows))
	}
	var clk map[string]time.Time
	admin(t, s, "POST", "/clock", `{"advance":"90m"}`).decode(t, &clk)
	if !clk["now"].Equal(t0.Add(90 * time.Minute)) {
		t.Errorf("clock = %v", clk)
	}
	admin(t, s, "POST", "/clock", `{"set":"2024-07-01T00:00:00Z"}`).decode(t, &clk)
	if !s.Now().Equal(time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("now = %v", s.Now())
	}
	admin(t, s, "PUT", "/faults", `{"getSheet":{"kind":"503","next":1},"addRows":{"kind":"timeout","next":1,"delay":"10ms"}}`)
	if got := s.Faults()["addRows"]; got.Delay != 10*time.Millisecond {
		t.Errorf("fault delay = %v", got.Delay)
	}
	if r := call(t, s, "GET", "/sheets/"+id(f.sheetID), nil); r.status != 503 {
		t.Errorf("faulted getSheet = %d", r.status)
	}
	var counters map[string]Counter
	admin(t, s, "GET", "/counters", "").decode(t, &counters)
	if counters[EndpointGetSheet].Faults != 1 {
		t.Errorf("counters = %+v", counters)
	}
	admin(t, s, "POST", "/counters/reset", "")
	admin(t, s, "DELETE", "/faults", "")
	if len(s.Counters()) != 0 || len(s.Faults()) != 0 {
		t.Errorf("after reset: %v %v", s.Counters(), s.Faults())
	}
	admin(t, s, "PUT", "/limits", `{"perMinute":1}`)
	call(t, s, "GET", "/sheets", nil)
	if r := call(t, s, "GET", "/sheets", nil); r.status != 429 {
		t.Errorf("admin limits not applied: %d", r.status)
	}
	var evs []ChangeEvent
	admin(t, s, "GET", "/events?since=0", "").decode(t, &evs)
	if len(evs) == 0 {
		t.Error("no events")
	}
	path := filepath.Join(t.TempDir(), "state.json")
	admin(t, s, "POST", "/state/save", fmt.Sprintf(`{"path":%q}`, path))
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	state := admin(t, s, "GET", "/state", "").body
	other := newTestServer(t, Options{})
	admin(t, other, "PUT", "/state", string(state))
	got, err := other.Sheet(f.sheetID)
	if err != nil || len(got.Rows) != 2 {
		t.Fatalf("loaded sheet = %v, %v", got, err)
	}
}

func TestAdminRefusesRemoteWithoutToken(t *testing.T) {
	s := NewServer(Options{Tokens: map[string]smartsheet.User{"tok": DefaultUser}})
	req, _ := http.NewRequest("GET", "/admin/counters", nil)
	req.RemoteAddr = "10.1.2.3:5555"
	rec := &recorder{header: http.Header{}}
	s.Handler().ServeHTTP(rec, req)
	if rec.status != 403 {
		t.Errorf("remote admin = %d, want 403", rec.status)
	}
	req.Header.Set("Authorization", "Bearer tok")
	rec = &recorder{header: http.Header{}}
	s.Handler().ServeHTTP(rec, req)
	if rec.status != 200 {
		t.Errorf("remote admin with token = %d, want 200", rec.status)
	}
	if _, err := s.Listen("0.0.0.0:0"); err == nil {
		t.Error("Listen on a non-loopback address succeeded")
	}
}

type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(code int)        { r.status = code }

func TestStateRoundTrip(t *testing.T) {
	s := newTestServer(t, Options{})
	g, err := s.Populate(GenConfig{Sheets: 2, Rows: 50, Weeks: 2})
	if err != nil {
		t.Fatal(err)
	}
	sh, _ := s.Sheet(g.SheetIDs[0])
	col := sh.Column(ColTotalPrice).ID
	s.AdvanceClock(time.Hour)
	if _, err := s.SetCell(Edit{User: smartsheet.User{Name: "X", Email: "x@y.z"}}, sh.ID, sh.Rows[3].ID, col, smartsheet.NumberValue("10.10")); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.Save(&buf); err != nil {
		t.Fatal(err)
	}
	o := NewServer(Options{})
	if err := o.Load(&buf); err != nil {
		t.Fatal(err)
	}
	for _, sid := range g.SheetIDs {
		a, _ := s.Sheet(sid)
		b, _ := o.Sheet(sid)
		if diff := cmp.Diff(a, b, cmp.Comparer(func(x, y smartsheet.Value) bool { return x.Equal(y) })); diff != "" {
			t.Errorf("sheet %d after load (-saved +loaded):\n%s", sid, diff)
		}
	}
	ha, _ := s.CellHistory(sh.ID, sh.Rows[3].ID, col)
	hb, _ := o.CellHistory(sh.ID, sh.Rows[3].ID, col)
	if len(ha) != 2 || len(hb) != 2 || hb[0].Value.Text() != "10.10" {
		t.Errorf("history saved %+v loaded %+v", ha, hb)
	}
	if !o.Now().Equal(s.Now()) {
		t.Errorf("clock after load = %v, want %v", o.Now(), s.Now())
	}
	// New ids after load do not repeat old ones.
	w := o.CreateWorkspace("after load")
	if w == g.FolderID || w == g.SheetIDs[0] {
		t.Error("id reused after load")
	}
}
