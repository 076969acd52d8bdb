package smartsim

import (
	"encoding/json"
	"fmt"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// summaryRec is a stored sheet summary field. Its index is its position in
// sheetRec.Summary.
type summaryRec struct {
	ID           int64            `json:"id"`
	Title        string           `json:"title"`
	Type         string           `json:"type"`
	Value        smartsheet.Value `json:"objectValue,omitzero"`
	DisplayValue string           `json:"displayValue,omitempty"`
	Format       string           `json:"format,omitempty"`
	Locked       bool             `json:"locked,omitempty"`
	Options      []string         `json:"options,omitempty"`
	Validation   bool             `json:"validation,omitempty"`
	CreatedAt    time.Time        `json:"createdAt"`
	ModifiedAt   time.Time        `json:"modifiedAt"`
	CreatedBy    smartsheet.User  `json:"createdBy"`
	ModifiedBy   smartsheet.User  `json:"modifiedBy"`
}

// summaryView is what a read of summary fields asked for: format and
// writerInfo are only sent on request, displayValue can be excluded.
type summaryView struct {
	format, writerInfo, noDisplay bool
}

// fullSummaryView is used for write results and the Go API.
var fullSummaryView = summaryView{format: true, writerInfo: true}

func parseSummaryView(q url.Values) summaryView {
	inc, exc := q.Get("include"), q.Get("exclude")
	return summaryView{
		format:     includes(inc, "format"),
		writerInfo: includes(inc, "writerInfo"),
		noDisplay:  includes(exc, "displayValue"),
	}
}

func renderSummaryField(f *summaryRec, index int, v summaryView) smartsheet.SummaryField {
	validation := f.Validation
	out := smartsheet.SummaryField{
		ID: f.ID, Index: &index, Title: f.Title, Type: f.Type, ObjectValue: f.Value,
		Options: slices.Clone(f.Options), Validation: &validation,
		CreatedAt: tp(f.CreatedAt), ModifiedAt: tp(f.ModifiedAt),
	}
	if !v.noDisplay {
		out.DisplayValue = f.DisplayValue
	}
	if v.format {
		out.Format = f.Format
	}
	if v.writerInfo {
		cb, mb := f.CreatedBy, f.ModifiedBy
		out.CreatedBy, out.ModifiedBy = &cb, &mb
	}
	if f.Locked {
		// Not enforced (see normLocked): no token is locked out.
		locked, forUser := true, false
		out.Locked, out.LockedForUser = &locked, &forUser
	}
	return out
}

func renderSummary(fields []*summaryRec, v summaryView) []smartsheet.SummaryField {
	out := make([]smartsheet.SummaryField, len(fields))
	for i, f := range fields {
		out[i] = renderSummaryField(f, i, v)
	}
	return out
}

// sheetSummary is the answer of GET /sheets/{id}/summary.
type sheetSummary struct {
	Fields []smartsheet.SummaryField `json:"fields"`
}

func getSheetSummary(s *Server, q *request) (any, *apiError) {
	v := parseSummaryView(q.r.URL.Query())
	s.mu.RLock()
	defer s.mu.RUnlock()
	sh, aerr := s.sheetForWrite(q)
	if aerr != nil {
		return nil, aerr
	}
	return sheetSummary{Fields: renderSummary(sh.Summary, v)}, nil
}

func listSummaryFields(s *Server, q *request) (any, *apiError) {
	p, aerr := parsePaging(q.r.URL.Query())
	if aerr != nil {
		return nil, aerr
	}
	v := parseSummaryView(q.r.URL.Query())
	s.mu.RLock()
	defer s.mu.RUnlock()
	sh, aerr := s.sheetForWrite(q)
	if aerr != nil {
		return nil, aerr
	}
	return indexResult(p, renderSummary(sh.Summary, v)), nil
}

// SummaryFields returns a sheet's summary fields in index order, with format
// and writer info.
func (s *Server) SummaryFields(sheetID int64) ([]smartsheet.SummaryField, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sh := s.st.Sheets[sheetID]
	if sh == nil {
		return nil, fmt.Errorf("summary of sheet %d: %w", sheetID, errNotFound())
	}
	return renderSummary(sh.Summary, fullSummaryView), nil
}

// SetSummaryField sets the value of a sheet's summary field, found by title,
// as e.User: an edit in the Smartsheet UI by someone allowed to make it (the
// simulator does not enforce locks; see normLocked).
func (s *Server) SetSummaryField(e Edit, sheetID int64, title string, v smartsheet.Value) error {
	s.mu.Lock()
	sh := s.st.Sheets[sheetID]
	if sh == nil {
		s.mu.Unlock()
		return fmt.Errorf("summary of sheet %d: %w", sheetID, errNotFound())
	}
	i := slices.IndexFunc(sh.Summary, func(f *summaryRec) bool { return f.Title == title })
	if i < 0 {
		s.mu.Unlock()
		return fmt.Errorf("summary field %q of sheet %d: %w", title, sheetID, errNotFound())
	}
	in := summaryInput{in: smartsheet.SummaryField{ID: sh.Summary[i].ID, ObjectValue: v}, keys: map[string]json.RawMessage{"objectValue": nil}}
	_, evs, aerr := s.updateSummaryLocked(sh, []summaryInput{in}, false, e)
	s.mu.Unlock()
	if aerr != nil {
		return fmt.Errorf("set summary field %q of sheet %d: %w", title, sheetID, aerr)
	}
	s.dispatch(evs)
	return nil
}

// summaryInput is one decoded field of an add or update request, with the
// keys it carried (an update changes only those).
type summaryInput struct {
	in   smartsheet.SummaryField
	keys map[string]json.RawMessage
}

func (si summaryInput) has(k string) bool { _, ok := si.keys[k]; return ok }

// summaryRequest reads the body (an array of fields, or one field) and the
// renameIfConflict parameter.
func summaryRequest(q *request) ([]summaryInput, bool, *apiError) {
	var rename bool
	if v := q.r.URL.Query().Get("renameIfConflict"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, false, errBadParam(v, "renameIfConflict")
		}
		rename = b
	}
	items, aerr := readOneOrMany(q.r.Body)
	if aerr != nil {
		return nil, false, aerr
	}
	if len(items) == 0 {
		return nil, false, errMissing("summaryField")
	}
	out := make([]summaryInput, len(items))
	for i, raw := range items {
		keys, aerr := decodeWithKeys(raw, &out[i].in)
		if aerr != nil {
			return nil, false, aerr
		}
		out[i].keys = keys
	}
	return out, rename, nil
}

func addSummaryFields(s *Server, q *request) (any, *apiError) {
	ins, rename, aerr := summaryRequest(q)
	if aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	sh, aerr := s.sheetForWrite(q)
	if aerr != nil {
		s.mu.Unlock()
		return nil, aerr
	}
	out, evs, aerr := s.addSummaryLocked(sh, ins, rename, q.edit())
	version := sh.Version
	s.mu.Unlock()
	if aerr != nil {
		return nil, aerr
	}
	s.dispatch(evs)
	return success(out, version), nil
}

func updateSummaryFields(s *Server, q *request) (any, *apiError) {
	ins, rename, aerr := summaryRequest(q)
	if aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	sh, aerr := s.sheetForWrite(q)
	if aerr != nil {
		s.mu.Unlock()
		return nil, aerr
	}
	out, evs, aerr := s.updateSummaryLocked(sh, ins, rename, q.edit())
	version := sh.Version
	s.mu.Unlock()
	if aerr != nil {
		return nil, aerr
	}
	s.dispatch(evs)
	return success(out, version), nil
}

// withIndex sets the request index of an error's detail.
func withIndex(e *apiError, i int) *apiError {
	e.detail = map[string]int{"index": i}
	return e
}

// addSummaryLocked validates every field first (all or nothing), then
// inserts them: at their index when given, else at the end. Callers hold s.mu.
func (s *Server) addSummaryLocked(sh *sheetRec, ins []summaryInput, rename bool, e Edit) ([]smartsheet.SummaryField, []ChangeEvent, *apiError) {
	fields := slices.Clone(sh.Summary)
	added := make([]*summaryRec, 0, len(ins))
	for i, si := range ins {
		in := si.in
		if si.has("formula") {
			return nil, nil, withIndex(errSummaryFormula(), i)
		}
		f := &summaryRec{Type: in.Type, Format: in.Format, Options: in.Options}
		if f.Type == "" {
			f.Type = smartsheet.TypeTextNumber
		}
		if in.Locked != nil {
			f.Locked = *in.Locked
		}
		if in.Validation != nil {
			f.Validation = *in.Validation
		}
		title, aerr := summaryTitle(fields, in.Title, nil, rename)
		if aerr != nil {
			return nil, nil, withIndex(aerr, i)
		}
		f.Title = title
		if aerr := s.checkSummaryField(f, in.ObjectValue); aerr != nil {
			return nil, nil, withIndex(aerr, i)
		}
		at := len(fields)
		if in.Index != nil {
			if *in.Index < 0 || *in.Index > len(fields) {
				return nil, nil, withIndex(errBadParam(strconv.Itoa(*in.Index), "index"), i)
			}
			at = *in.Index
		}
		fields = slices.Insert(fields, at, f)
		added = append(added, f)
	}
	tx := s.begin(sh, e)
	for _, f := range added {
		f.ID = s.st.nextID()
		f.CreatedAt, f.ModifiedAt = tx.edit.At, tx.edit.At
		f.CreatedBy, f.ModifiedBy = tx.edit.User, tx.edit.User
	}
	sh.Summary = fields
	evs := tx.commit()
	return renderChanged(fields, added), evs, nil
}

// updateSummaryLocked applies the keys each field carries, to copies, so a
// refused request changes nothing. Callers hold s.mu.
func (s *Server) updateSummaryLocked(sh *sheetRec, ins []summaryInput, rename bool, e Edit) ([]smartsheet.SummaryField, []ChangeEvent, *apiError) {
	fields := slices.Clone(sh.Summary)
	var changed []*summaryRec
	for i, si := range ins {
		in := si.in
		if in.ID == 0 {
			return nil, nil, withIndex(errMissing("summaryField.id"), i)
		}
		pos := slices.IndexFunc(fields, func(f *summaryRec) bool { return f.ID == in.ID })
		if pos < 0 {
			return nil, nil, withIndex(errNotFound(), i)
		}
		if si.has("formula") {
			return nil, nil, withIndex(errSummaryFormula(), i)
		}
		f := *fields[pos]
		if si.has("title") {
			title, aerr := summaryTitle(fields, in.Title, fields[pos], rename)
			if aerr != nil {
				return nil, nil, withIndex(aerr, i)
			}
			f.Title = title
		}
		if si.has("type") {
			f.Type = in.Type
		}
		if si.has("format") {
			f.Format = in.Format
		}
		if si.has("options") {
			f.Options = in.Options
		}
		if si.has("locked") {
			f.Locked = in.Locked != nil && *in.Locked
		}
		if si.has("validation") {
			f.Validation = in.Validation != nil && *in.Validation
		}
		v := f.Value
		if si.has("objectValue") {
			v = in.ObjectValue
		}
		// Re-checked even when only the type or format changed: the stored
		// value must fit the new type, and the display follows the format.
		if aerr := s.checkSummaryField(&f, v); aerr != nil {
			return nil, nil, withIndex(aerr, i)
		}
		fields[pos] = &f
		if in.Index != nil && *in.Index != pos {
			if *in.Index < 0 || *in.Index >= len(fields) {
				return nil, nil, withIndex(errBadParam(strconv.Itoa(*in.Index), "index"), i)
			}
			fields = slices.Delete(fields, pos, pos+1)
			fields = slices.Insert(fields, *in.Index, &f)
		}
		if j := slices.IndexFunc(changed, func(c *summaryRec) bool { return c.ID == f.ID }); j >= 0 {
			changed[j] = &f // the same field twice: the last version wins
		} else {
			changed = append(changed, &f)
		}
	}
	tx := s.begin(sh, e)
	for _, f := range changed {
		f.ModifiedAt, f.ModifiedBy = tx.edit.At, tx.edit.User
	}
	sh.Summary = fields
	evs := tx.commit()
	return renderChanged(fields, changed), evs, nil
}

// renderChanged renders the written fields in request order with their
// final index.
func renderChanged(fields, changed []*summaryRec) []smartsheet.SummaryField {
	out := make([]smartsheet.SummaryField, 0, len(changed))
	for _, f := range changed {
		out = append(out, renderSummaryField(f, slices.Index(fields, f), fullSummaryView))
	}
	return out
}

// summaryTitle checks that title is set and unique (case-insensitively)
// among fields other than self (nil for a new field; fields of the same
// request count too); with rename a taken title becomes "Title (1)",
// "Title (2)", ... as Smartsheet's renameIfConflict does.
func summaryTitle(fields []*summaryRec, title string, self *summaryRec, rename bool) (string, *apiError) {
	if strings.TrimSpace(title) == "" {
		return "", errMissing("summaryField.title")
	}
	taken := func(t string) bool {
		return slices.ContainsFunc(fields, func(f *summaryRec) bool { return f != self && strings.EqualFold(f.Title, t) })
	}
	if !taken(title) {
		return title, nil
	}
	if !rename {
		return "", &apiError{status: 400, code: smartsheet.CodeInvalidParameter, msg: fmt.Sprintf(
			"The value '%s' was not valid for the parameter 'title'. Summary field titles must be unique within the sheet (or set renameIfConflict=true).", title)}
	}
	for n := 1; ; n++ {
		if t := fmt.Sprintf("%s (%d)", title, n); !taken(t) {
			return t, nil
		}
	}
}

func errSummaryFormula() *apiError {
	return &apiError{status: 400, code: smartsheet.CodeInvalidParameter, msg: "The simulator does not support summary field formulas."}
}

// checkSummaryField validates a field's type and format and sets its value
// and display value from v, with strict typing like cells (summary fields
// have no "strict" switch): CHECKBOX takes a boolean, DATE "YYYY-MM-DD",
// CONTACT_LIST an email (or a contact object), TEXT_NUMBER and PICKLIST a
// string or a number. An empty string clears the value.
func (s *Server) checkSummaryField(f *summaryRec, v smartsheet.Value) *apiError {
	if !validColumnTypes[f.Type] {
		return errBadParam(f.Type, "type")
	}
	if !validFormat(f.Format) {
		return errBadFormat(f.Format)
	}
	if v.Kind() == smartsheet.KindString {
		switch t := v.Text(); {
		case t == "":
			v = smartsheet.Value{}
		case utf8.RuneCountInString(t) > maxCellChars:
			v = smartsheet.StringValue(string([]rune(t)[:maxCellChars]))
		}
	}
	bad := &apiError{status: 400, code: smartsheet.CodeStrictTypeViolation, msg: fmt.Sprintf(
		"The value of summary field '%s' did not conform to the strict requirements for type %s.", f.Title, f.Type)}
	display := ""
	switch f.Type {
	case smartsheet.TypeCheckbox:
		switch v.Kind() {
		case smartsheet.KindNone:
			v = smartsheet.BoolValue(false)
		case smartsheet.KindBool:
		default:
			return bad
		}
	case smartsheet.TypeDate:
		if !v.IsZero() {
			d, err := time.Parse(time.DateOnly, v.Text())
			if err != nil || v.Kind() != smartsheet.KindString {
				return bad
			}
			display = d.Format("01/02/06")
		}
	case smartsheet.TypeContact:
		if !v.IsZero() {
			name, ok := s.contactDisplay(v)
			if !ok {
				return bad
			}
			display = name
		}
	case smartsheet.TypeTextNumber, smartsheet.TypePicklist:
		switch v.Kind() {
		case smartsheet.KindNone:
		case smartsheet.KindString, smartsheet.KindNumber:
			display = v.Text()
			if dv, ok := formatNumber(v, f.Format, ""); ok {
				display = dv
			}
		default:
			return bad
		}
	default:
		if v.Kind() != smartsheet.KindObject {
			display = v.Text()
		}
	}
	f.Value, f.DisplayValue = v, display
	return nil
}

// contactDisplay checks a CONTACT_LIST value (an email, or an object with an
// email and optionally a name) and returns the name to display.
func (s *Server) contactDisplay(v smartsheet.Value) (string, bool) {
	email, name := v.Text(), ""
	switch v.Kind() {
	case smartsheet.KindString:
	case smartsheet.KindObject:
		var c struct{ Email, Name string }
		if err := json.Unmarshal([]byte(v.Text()), &c); err != nil {
			return "", false
		}
		email, name = c.Email, c.Name
	default:
		return "", false
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email {
		return "", false
	}
	if name == "" {
		name = s.knownUser(email).Name
	}
	return name, true
}
