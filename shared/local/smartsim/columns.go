package smartsim

import (
	"bytes"
	"encoding/json"
	"io"
	"slices"
	"strings"

	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// readOneOrMany reads a JSON body holding one object or an array of objects,
// returning each element raw.
func readOneOrMany(body io.Reader) ([]json.RawMessage, *apiError) {
	data, err := io.ReadAll(io.LimitReader(body, 64<<20))
	if err != nil {
		return nil, errBadJSON(err)
	}
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '[' {
		var items []json.RawMessage
		if err := json.Unmarshal(data, &items); err != nil {
			return nil, errBadJSON(err)
		}
		return items, nil
	}
	var one json.RawMessage
	if err := json.Unmarshal(data, &one); err != nil {
		return nil, errBadJSON(err)
	}
	return []json.RawMessage{one}, nil
}

// decodeWithKeys decodes v and reports which top-level keys were present.
func decodeWithKeys(raw json.RawMessage, v any) (map[string]json.RawMessage, *apiError) {
	if err := json.Unmarshal(raw, v); err != nil {
		return nil, errBadJSON(err)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		return nil, errBadJSON(err)
	}
	return keys, nil
}

// sheetForWrite looks a sheet up; callers hold s.mu.
func (s *Server) sheetForWrite(q *request) (*sheetRec, *apiError) {
	id, aerr := q.pathID("sheetId")
	if aerr != nil {
		return nil, aerr
	}
	sh := s.st.Sheets[id]
	if sh == nil {
		return nil, errNotFound()
	}
	return sh, nil
}

func listColumns(s *Server, q *request) (any, *apiError) {
	p, aerr := parsePaging(q.r.URL.Query())
	if aerr != nil {
		return nil, aerr
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	sh, aerr := s.sheetForWrite(q)
	if aerr != nil {
		return nil, aerr
	}
	cols := slices.Clone(sh.Columns)
	if !includes(q.r.URL.Query().Get("include"), "format") {
		// As on GET /sheets/{id}: formats only when asked for.
		for i := range cols {
			cols[i].Format = ""
		}
	}
	return indexResult(p, cols), nil
}

// includes reports whether a comma-separated include list names item.
func includes(list, item string) bool {
	for _, v := range strings.Split(list, ",") {
		if strings.TrimSpace(v) == item {
			return true
		}
	}
	return false
}

func addColumns(s *Server, q *request) (any, *apiError) {
	items, aerr := readOneOrMany(q.r.Body)
	if aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	sh, aerr := s.sheetForWrite(q)
	if aerr != nil {
		s.mu.Unlock()
		return nil, aerr
	}
	at := len(sh.Columns)
	var cols []smartsheet.Column
	for i, raw := range items {
		var c smartsheet.Column
		keys, aerr := decodeWithKeys(raw, &c)
		if aerr != nil {
			s.mu.Unlock()
			return nil, aerr
		}
		if c.Primary {
			s.mu.Unlock()
			return nil, &apiError{status: 400, code: 1018, msg: "A sheet can have only one primary column.", detail: map[string]int{"index": i}}
		}
		if _, ok := keys["index"]; ok && i == 0 {
			if c.Index < 0 || c.Index > len(sh.Columns) {
				s.mu.Unlock()
				return nil, errBadParam(string(keys["index"]), "index")
			}
			at = c.Index
		}
		c.ID = 0
		pc, aerr := s.prepareColumn(c)
		if aerr != nil {
			s.mu.Unlock()
			return nil, aerr
		}
		cols = append(cols, pc)
	}
	tx := s.begin(sh, q.edit())
	sh.Columns = slices.Insert(sh.Columns, at, cols...)
	for i := range sh.Columns {
		sh.Columns[i].Index = i
	}
	out := slices.Clone(sh.Columns[at : at+len(cols)])
	for _, c := range cols {
		tx.record(ObjectColumn, EventCreated, c.ID, 0, c.ID)
	}
	evs := tx.commit()
	version := sh.Version
	s.mu.Unlock()
	s.dispatch(evs)
	return success(out, version), nil
}

// updateColumn is PUT /sheets/{sheetId}/columns/{columnId}: only the keys
// present in the body change, as on Smartsheet, and the new index moves the
// column.
func updateColumn(s *Server, q *request) (any, *apiError) {
	colID, aerr := q.pathID("columnId")
	if aerr != nil {
		return nil, aerr
	}
	raw, err := io.ReadAll(io.LimitReader(q.r.Body, 1<<20))
	if err != nil {
		return nil, errBadJSON(err)
	}
	var in smartsheet.Column
	keys, aerr := decodeWithKeys(raw, &in)
	if aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	sh, aerr := s.sheetForWrite(q)
	if aerr != nil {
		s.mu.Unlock()
		return nil, aerr
	}
	pos := slices.IndexFunc(sh.Columns, func(c smartsheet.Column) bool { return c.ID == colID })
	if pos < 0 {
		s.mu.Unlock()
		return nil, errNotFound()
	}
	c, aerr := updatedColumn(sh.Columns[pos], in, keys)
	if aerr != nil {
		s.mu.Unlock()
		return nil, aerr
	}
	tx := s.begin(sh, q.edit())
	sh.Columns[pos] = c
	if _, ok := keys["index"]; ok && in.Index != pos {
		if in.Index < 0 || in.Index >= len(sh.Columns) {
			s.mu.Unlock()
			return nil, errBadParam(string(keys["index"]), "index")
		}
		sh.Columns = slices.Delete(sh.Columns, pos, pos+1)
		sh.Columns = slices.Insert(sh.Columns, in.Index, c)
	}
	for i := range sh.Columns {
		sh.Columns[i].Index = i
	}
	out := *sh.column(colID)
	tx.record(ObjectColumn, EventUpdated, colID, 0, colID)
	evs := tx.commit()
	version := sh.Version
	s.mu.Unlock()
	s.dispatch(evs)
	return success(out, version), nil
}

// updatedColumn is c with the fields of in whose keys the request body named
// (keys); a key absent leaves its field alone, so a zero value in in is never
// mistaken for a request to clear. The index is the caller's: it moves the
// column among the others.
func updatedColumn(c, in smartsheet.Column, keys map[string]json.RawMessage) (smartsheet.Column, *apiError) {
	has := func(k string) bool { _, ok := keys[k]; return ok }
	if has("type") && in.Type != c.Type {
		if c.Primary {
			return c, &apiError{status: 400, code: 1018, msg: "The type of the primary column cannot be changed."}
		}
		if !validColumnTypes[in.Type] {
			return c, errBadParam(in.Type, "type")
		}
		c.Type = in.Type
		if c.Type != smartsheet.TypePicklist {
			c.Options = nil
		}
		if c.Type != smartsheet.TypeContact {
			c.ContactOptions = nil
		}
	}
	if has("title") {
		if in.Title == "" {
			return c, errMissing("column.title")
		}
		c.Title = in.Title
	}
	if has("options") {
		c.Options = in.Options
	}
	if has("contactOptions") {
		c.ContactOptions = in.ContactOptions
	}
	if has("width") {
		c.Width = in.Width
	}
	if has("validation") {
		c.Validation = in.Validation
	}
	if has("hidden") {
		c.Hidden = in.Hidden
	}
	if has("description") {
		c.Description = in.Description
	}
	if has("format") {
		if !validFormat(in.Format) {
			return c, errBadFormat(in.Format)
		}
		// Existing cells keep the display value they were written with;
		// cells written from now on use the new format.
		c.Format = in.Format
	}
	if has("locked") {
		c.Locked = normLocked(in.Locked)
	}
	return c, nil
}
