package smartsim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

var t0 = time.Date(2024, 6, 5, 14, 53, 31, 0, time.UTC)

// newTestServer starts a server with a frozen clock at t0.
func newTestServer(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s := NewServer(opts)
	if _, err := s.Listen("127.0.0.1:0"); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	s.SetClock(t0)
	return s
}

type resp struct {
	status int
	body   []byte
	header http.Header
}

func (r resp) decode(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		tb.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r resp) errBody(tb testing.TB) smartsheet.ErrorBody {
	tb.Helper()
	var e smartsheet.ErrorBody
	r.decode(tb, &e)
	return e
}

// call sends a request with the default token and a JSON body (unless body
// is []byte or nil).
func call(tb testing.TB, s *Server, method, path string, body any, headers ...string) resp {
	tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			tb.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, s.URL()+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer test-token")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, body: data, header: res.Header}
}

// fixture is a small sheet: Name (primary), Amount, Done (CHECKBOX), Due (DATE), Owner (CONTACT_LIST).
type fixture struct {
	sheetID                          int64
	colName, colAmt, colDone, colDue int64
	colOwner                         int64
	rows                             []int64
}

func newFixture(tb testing.TB, s *Server, nRows int) fixture {
	tb.Helper()
	in := smartsheet.Sheet{Name: "Fixture", Columns: []smartsheet.Column{
		{Title: "Name", Type: smartsheet.TypeTextNumber, Primary: true},
		{Title: "Amount", Type: smartsheet.TypeTextNumber},
		{Title: "Done", Type: smartsheet.TypeCheckbox},
		{Title: "Due", Type: smartsheet.TypeDate},
		{Title: "Owner", Type: smartsheet.TypeContact},
	}}
	sh, err := s.CreateSheet(in, 0, 0, Edit{})
	if err != nil {
		tb.Fatal(err)
	}
	f := fixture{sheetID: sh.ID, colName: sh.Columns[0].ID, colAmt: sh.Columns[1].ID, colDone: sh.Columns[2].ID, colDue: sh.Columns[3].ID, colOwner: sh.Columns[4].ID}
	var rows []smartsheet.Row
	for i := range nRows {
		rows = append(rows, smartsheet.Row{Cells: []smartsheet.Cell{
			{ColumnID: f.colName, Value: smartsheet.StringValue("row " + string(rune('A'+i%26)))},
			{ColumnID: f.colAmt, Value: smartsheet.IntValue(int64(i))},
		}})
	}
	for len(rows) > 0 {
		n := min(len(rows), MaxRowsPerRequest)
		out, err := s.AddRows(Edit{}, f.sheetID, rows[:n])
		if err != nil {
			tb.Fatal(err)
		}
		for _, r := range out {
			f.rows = append(f.rows, r.ID)
		}
		rows = rows[n:]
	}
	return f
}

func id(i int64) string { return jsonNumber(i) }

func jsonNumber(i int64) string { b, _ := json.Marshal(i); return string(b) }
