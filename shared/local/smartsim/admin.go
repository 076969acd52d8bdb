package smartsim

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// Admin routes (JSON in and out; allowed from loopback or with a valid token):
//
//	POST   /admin/cells           {sheetId,rowId,columnId,value,user?,at?,changeAgent?}: SetCell
//	POST   /admin/automation      {sheetId,rowId,columnId,value,at?}: AutomationSetCell
//	POST   /admin/rows            {sheetId,rows,user?,at?}: AddRows
//	PUT    /admin/rows            {sheetId,rows,user?,at?}: UpdateRows
//	POST   /admin/rows/delete     {sheetId,ids,user?,at?}: DeleteRows
//	GET    /admin/clock           → {now}
//	POST   /admin/clock           {set?: time, advance?: "1h"}
//	GET    /admin/counters        → {endpoint: {calls,faults,rateLimited}}
//	POST   /admin/counters/reset
//	GET    /admin/faults          → {endpoint: fault}
//	PUT    /admin/faults          {endpoint: {kind,rate?,next?,delay?}} (merged)
//	DELETE /admin/faults
//	GET    /admin/limits, PUT /admin/limits {perMinute,historyPerMinute,disabled}
//	GET    /admin/latency, PUT /admin/latency {base:"400ms",perRow:"1ms",jitter:0.2,rejected?}
//	GET    /admin/events?since=N  → [event]
//	GET    /admin/state           → the state JSON (Save)
//	PUT    /admin/state           state JSON body (Load)
//	POST   /admin/state/save      {path}: SaveFile
//	POST   /admin/state/load      {path}: LoadFile
func (s *Server) adminRoutes() {
	h := func(pattern string, fn func(*http.Request) (any, *apiError)) {
		s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if !s.adminAllowed(r) {
				s.writeError(w, &apiError{status: 403, code: 1004, msg: "You are not authorized to perform this action."})
				return
			}
			out, aerr := fn(r)
			if aerr != nil {
				s.writeError(w, aerr)
				return
			}
			if out == nil {
				out = map[string]string{"message": "SUCCESS"}
			}
			writeJSON(w, http.StatusOK, out)
		})
	}
	h("POST /admin/cells", func(r *http.Request) (any, *apiError) { return s.adminCell(r, false) })
	h("POST /admin/automation", func(r *http.Request) (any, *apiError) { return s.adminCell(r, true) })
	h("POST /admin/rows", func(r *http.Request) (any, *apiError) { return s.adminRows(r, "add") })
	h("PUT /admin/rows", func(r *http.Request) (any, *apiError) { return s.adminRows(r, "update") })
	h("POST /admin/rows/delete", func(r *http.Request) (any, *apiError) { return s.adminRows(r, "delete") })
	h("GET /admin/clock", func(r *http.Request) (any, *apiError) { return map[string]time.Time{"now": s.Now()}, nil })
	h("POST /admin/clock", s.adminClock)
	h("GET /admin/counters", func(r *http.Request) (any, *apiError) { return s.Counters(), nil })
	h("POST /admin/counters/reset", func(r *http.Request) (any, *apiError) { s.ResetCounters(); return nil, nil })
	h("GET /admin/faults", func(r *http.Request) (any, *apiError) { return s.Faults(), nil })
	h("PUT /admin/faults", func(r *http.Request) (any, *apiError) {
		var in map[string]Fault
		if aerr := decodeBody(r, &in); aerr != nil {
			return nil, aerr
		}
		for k, f := range in {
			s.SetFault(k, f)
		}
		return s.Faults(), nil
	})
	h("DELETE /admin/faults", func(r *http.Request) (any, *apiError) { s.ClearFaults(); return nil, nil })
	h("GET /admin/limits", func(r *http.Request) (any, *apiError) { return s.CurrentLimits(), nil })
	h("PUT /admin/limits", func(r *http.Request) (any, *apiError) {
		var in Limits
		if aerr := decodeBody(r, &in); aerr != nil {
			return nil, aerr
		}
		s.SetLimits(in)
		return s.CurrentLimits(), nil
	})
	h("GET /admin/latency", func(r *http.Request) (any, *apiError) { return s.CurrentLatency(), nil })
	h("PUT /admin/latency", func(r *http.Request) (any, *apiError) {
		var in Latency
		if aerr := decodeBody(r, &in); aerr != nil {
			return nil, aerr
		}
		s.SetLatency(in)
		return s.CurrentLatency(), nil
	})
	h("GET /admin/events", func(r *http.Request) (any, *apiError) {
		since, _ := strconv.ParseInt(r.URL.Query().Get("since"), 10, 64)
		evs := s.Events(since)
		if evs == nil {
			evs = []ChangeEvent{}
		}
		return evs, nil
	})
	h("GET /admin/state", func(r *http.Request) (any, *apiError) {
		var buf bytes.Buffer
		if err := s.Save(&buf); err != nil {
			return nil, &apiError{status: 500, code: 4004, msg: err.Error()}
		}
		return json.RawMessage(buf.Bytes()), nil
	})
	h("PUT /admin/state", func(r *http.Request) (any, *apiError) {
		if err := s.Load(r.Body); err != nil {
			return nil, errBadJSON(err)
		}
		return nil, nil
	})
	h("POST /admin/state/save", func(r *http.Request) (any, *apiError) { return s.adminFile(r, s.SaveFile) })
	h("POST /admin/state/load", func(r *http.Request) (any, *apiError) { return s.adminFile(r, s.LoadFile) })
}

func (s *Server) adminAllowed(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err == nil {
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			return true
		}
	}
	_, aerr := s.authenticate(r)
	return aerr == nil
}

// adminEdit is the attribution part of admin requests.
type adminEdit struct {
	User        *smartsheet.User `json:"user,omitempty"`
	At          time.Time        `json:"at,omitzero"`
	ChangeAgent string           `json:"changeAgent,omitempty"`
}

func (a adminEdit) edit() Edit {
	e := Edit{At: a.At, ChangeAgent: a.ChangeAgent, User: DefaultUser}
	if a.User != nil {
		e.User = *a.User
	}
	return e
}

func toAPIError(err error) *apiError {
	var ae *apiError
	if asAPIError(err, &ae) {
		return ae
	}
	return &apiError{status: 400, code: 1018, msg: err.Error()}
}

func (s *Server) adminCell(r *http.Request, automation bool) (any, *apiError) {
	var in struct {
		adminEdit
		SheetID  int64            `json:"sheetId"`
		RowID    int64            `json:"rowId"`
		ColumnID int64            `json:"columnId"`
		Value    smartsheet.Value `json:"value"`
	}
	if aerr := decodeBody(r, &in); aerr != nil {
		return nil, aerr
	}
	e := in.edit()
	var row smartsheet.Row
	var err error
	if automation {
		row, err = s.AutomationSetCell(e, in.SheetID, in.RowID, in.ColumnID, in.Value)
	} else {
		row, err = s.SetCell(e, in.SheetID, in.RowID, in.ColumnID, in.Value)
	}
	if err != nil {
		return nil, toAPIError(err)
	}
	return row, nil
}

func (s *Server) adminRows(r *http.Request, op string) (any, *apiError) {
	var in struct {
		adminEdit
		SheetID int64            `json:"sheetId"`
		Rows    []smartsheet.Row `json:"rows"`
		IDs     []int64          `json:"ids"`
	}
	if aerr := decodeBody(r, &in); aerr != nil {
		return nil, aerr
	}
	var out any
	var err error
	switch op {
	case "add":
		out, err = s.AddRows(in.edit(), in.SheetID, in.Rows)
	case "update":
		out, err = s.UpdateRows(in.edit(), in.SheetID, in.Rows)
	default:
		out, err = s.DeleteRows(in.edit(), in.SheetID, in.IDs)
	}
	if err != nil {
		return nil, toAPIError(err)
	}
	return out, nil
}

func (s *Server) adminClock(r *http.Request) (any, *apiError) {
	var in struct {
		Set     *time.Time `json:"set"`
		Advance string     `json:"advance"`
	}
	if aerr := decodeBody(r, &in); aerr != nil {
		return nil, aerr
	}
	if in.Set != nil {
		s.SetClock(*in.Set)
	}
	if in.Advance != "" {
		d, err := time.ParseDuration(in.Advance)
		if err != nil {
			return nil, errBadParam(in.Advance, "advance")
		}
		s.AdvanceClock(d)
	}
	return map[string]time.Time{"now": s.Now()}, nil
}

func (s *Server) adminFile(r *http.Request, fn func(string) error) (any, *apiError) {
	var in struct {
		Path string `json:"path"`
	}
	if aerr := decodeBody(r, &in); aerr != nil {
		return nil, aerr
	}
	if in.Path == "" {
		return nil, errMissing("path")
	}
	if err := fn(in.Path); err != nil {
		return nil, &apiError{status: 500, code: 4004, msg: err.Error()}
	}
	return nil, nil
}
