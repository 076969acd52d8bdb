package smartsim

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// MaxRowsPerRequest is Smartsheet's limit of rows per add or update request.
const MaxRowsPerRequest = 500

// location is where a row goes: one of toTop, toBottom, parentId, siblingId(+above).
type location struct {
	top, bottom, above bool
	parent, sibling    int64
}

func locationOf(r smartsheet.Row) location {
	return location{top: r.ToTop, bottom: r.ToBottom, above: r.Above, parent: r.ParentID, sibling: r.SiblingID}
}

func (l location) isZero() bool { return l == location{} }

func (l location) valid() bool {
	if l.top && l.bottom {
		return false
	}
	if l.sibling != 0 && (l.top || l.bottom || l.parent != 0) {
		return false
	}
	return !l.above || l.sibling != 0
}

func errBadLocation() *apiError {
	return &apiError{status: 400, code: 1062, msg: "Invalid row location."}
}

func errMixedLocations() *apiError {
	return &apiError{status: 400, code: 1123, msg: "Specifying multiple row locations is not yet supported. Each row must use the same row location attribute and value (toBottom, toTop, parentId, siblingId, above)"}
}

// depth is how many ancestors a row has.
func (sh *sheetRec) depth(r *rowRec) int {
	d := 0
	for p := r.ParentID; p != 0 && d < 1000; d++ {
		pr := sh.rowIndex[p]
		if pr == nil {
			break
		}
		p = pr.ParentID
	}
	return d
}

// blockEnd returns the index after the row at i and its descendants.
func (sh *sheetRec) blockEnd(i int) int {
	d := sh.depth(sh.Rows[i])
	j := i + 1
	for j < len(sh.Rows) && sh.depth(sh.Rows[j]) > d {
		j++
	}
	return j
}

// insertionPoint resolves a location to a position in sh.Rows and a parent id.
func (sh *sheetRec) insertionPoint(l location) (int, int64, *apiError) {
	switch {
	case l.sibling != 0:
		i := sh.rowPos(l.sibling)
		if i < 0 {
			return 0, 0, errBadLocation()
		}
		if l.above {
			return i, sh.Rows[i].ParentID, nil
		}
		return sh.blockEnd(i), sh.Rows[i].ParentID, nil
	case l.parent != 0:
		i := sh.rowPos(l.parent)
		if i < 0 {
			return 0, 0, errBadLocation()
		}
		if l.top {
			return i + 1, l.parent, nil
		}
		return sh.blockEnd(i), l.parent, nil
	case l.top:
		return 0, 0, nil
	default:
		return len(sh.Rows), 0, nil
	}
}

// rowsRequest is a decoded add or update of rows.
type rowsRequest struct {
	rows    []smartsheet.Row
	partial bool
	update  bool
}

func parseRowsRequest(q *request, update bool) (rowsRequest, *apiError) {
	rr := rowsRequest{update: update}
	if v := q.r.URL.Query().Get("allowPartialSuccess"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return rr, errBadParam(v, "allowPartialSuccess")
		}
		rr.partial = b
	}
	items, aerr := readOneOrMany(q.r.Body)
	if aerr != nil {
		return rr, aerr
	}
	if len(items) > MaxRowsPerRequest {
		return rr, &apiError{status: 400, code: 1018, msg: fmt.Sprintf("The value '%d' was not valid for the parameter 'rows'. At most %d rows can be added or updated in one request.", len(items), MaxRowsPerRequest)}
	}
	rr.rows = make([]smartsheet.Row, len(items))
	for i, raw := range items {
		if err := json.Unmarshal(raw, &rr.rows[i]); err != nil {
			return rr, errBadJSON(err)
		}
	}
	return rr, nil
}

// preparedRow is a validated row write.
type preparedRow struct {
	index int
	in    smartsheet.Row
	cells []preparedCell
	row   *rowRec // update target
}

type preparedCell struct {
	columnID int64
	content  cellContent
}

// prepareRow validates one row of the request without changing anything.
func (s *Server) prepareRow(sh *sheetRec, i int, in smartsheet.Row, update bool) (preparedRow, *apiError) {
	p := preparedRow{index: i, in: in}
	detail := map[string]int64{"index": int64(i)}
	if update {
		if in.ID == 0 {
			return p, &apiError{status: 400, code: 1012, msg: "Required object attribute(s) are missing from your request: row.id.", detail: detail}
		}
		detail["rowId"] = in.ID
		p.row = sh.row(in.ID)
		if p.row == nil {
			return p, &apiError{status: 404, code: 1006, msg: "Not Found", detail: detail}
		}
	}
	seen := map[int64]bool{}
	for _, c := range in.Cells {
		col := sh.column(c.ColumnID)
		if col == nil {
			e := errBadColumn(c.ColumnID, i)
			e.detail = detail
			return p, e
		}
		if seen[c.ColumnID] {
			return p, &apiError{status: 400, code: 1018, msg: fmt.Sprintf("The value '%d' was not valid for the parameter 'columnId'. A column may appear once per row.", c.ColumnID), detail: detail}
		}
		seen[c.ColumnID] = true
		cc, aerr := s.normalizeCell(col, c)
		if aerr != nil {
			aerr.detail = detail
			return p, aerr
		}
		p.cells = append(p.cells, preparedCell{c.ColumnID, cc})
	}
	return p, nil
}

// RowsResult is the outcome of a bulk row write.
type RowsResult struct {
	Rows        []smartsheet.Row
	FailedItems []smartsheet.FailedItem
	Version     int64
}

// writeRows validates and applies a bulk add or update: all-or-nothing, or
// with partial success. Callers hold s.mu.
func (s *Server) writeRows(sh *sheetRec, rr rowsRequest, e Edit) (RowsResult, []ChangeEvent, *apiError) {
	var res RowsResult
	if len(rr.rows) == 0 {
		return res, nil, errMissing("row")
	}
	// One location for all rows of the request.
	loc := locationOf(rr.rows[0])
	for _, r := range rr.rows {
		if !locationOf(r).valid() {
			return res, nil, errBadLocation()
		}
		if locationOf(r) != loc {
			return res, nil, errMixedLocations()
		}
	}
	var ok []preparedRow
	for i, r := range rr.rows {
		p, aerr := s.prepareRow(sh, i, r, rr.update)
		if aerr != nil {
			if !rr.partial {
				return res, nil, aerr
			}
			fi := smartsheet.FailedItem{Index: i, RowID: r.ID, Error: aerr.body(s.st.refID())}
			fi.Error.Detail = nil
			res.FailedItems = append(res.FailedItems, fi)
			continue
		}
		ok = append(ok, p)
	}
	if !loc.isZero() {
		if _, _, aerr := sh.insertionPoint(loc); aerr != nil {
			return res, nil, aerr
		}
		for _, p := range ok {
			if p.row != nil && (p.row.ID == loc.sibling || p.row.ID == loc.parent) {
				return res, nil, errBadLocation()
			}
		}
	}
	if len(ok) == 0 {
		// Partial success with nothing applied: no save, no new version.
		res.Version = sh.Version
		res.Rows = []smartsheet.Row{}
		return res, nil, nil
	}
	tx := s.begin(sh, e)
	rows := make([]*rowRec, len(ok))
	for k, p := range ok {
		r := p.row
		if r == nil {
			r = tx.newRow()
		} else {
			tx.record(ObjectRow, EventUpdated, r.ID, r.ID, 0)
		}
		for _, c := range p.cells {
			tx.setCell(r, c.columnID, c.content, p.row == nil)
		}
		tx.touchRow(r)
		rows[k] = r
	}
	if !rr.update || !loc.isZero() {
		s.placeRows(sh, rows, loc, rr.update)
	}
	evs := tx.commit()
	res.Version = sh.Version
	num := make(map[int64]int, len(sh.Rows))
	for i, r := range sh.Rows {
		num[r.ID] = i + 1
	}
	for _, r := range rows {
		res.Rows = append(res.Rows, s.renderRow(sh, r, num[r.ID], sh.Columns, sheetView{}))
	}
	return res, evs, nil
}

// placeRows puts new rows (or moves existing ones, with their children) at loc.
func (s *Server) placeRows(sh *sheetRec, rows []*rowRec, loc location, move bool) {
	var blocks []*rowRec
	if move {
		moving := map[int64]bool{}
		for _, r := range rows {
			moving[r.ID] = true
		}
		for _, r := range rows {
			i := sh.rowPos(r.ID)
			end := sh.blockEnd(i)
			for _, b := range sh.Rows[i:end] {
				if b == r || !moving[b.ID] {
					blocks = append(blocks, b)
				}
			}
			sh.Rows = slices.Delete(sh.Rows, i, end)
		}
	} else {
		blocks = rows
	}
	pos, parent, _ := sh.insertionPoint(loc)
	for _, r := range rows {
		r.ParentID = parent
		sh.rowIndex[r.ID] = r
	}
	sh.Rows = slices.Insert(sh.Rows, pos, blocks...)
}

func (s *Server) rowsHandler(update bool) apiHandler {
	return func(s *Server, q *request) (any, *apiError) {
		rr, aerr := parseRowsRequest(q, update)
		if aerr != nil {
			return nil, aerr
		}
		q.rows = len(rr.rows)
		s.mu.Lock()
		sh, aerr := s.sheetForWrite(q)
		if aerr != nil {
			s.mu.Unlock()
			return nil, aerr
		}
		res, evs, aerr := s.writeRows(sh, rr, q.edit())
		s.mu.Unlock()
		if aerr != nil {
			return nil, aerr
		}
		s.dispatch(evs)
		out := success(res.Rows, res.Version)
		if len(res.FailedItems) > 0 {
			out.Message, out.ResultCode, out.FailedItems = "PARTIAL_SUCCESS", smartsheet.ResultPartialSuccess, res.FailedItems
		}
		return out, nil
	}
}

// deleteRowsLocked removes rows and their descendants. Callers hold s.mu.
func (s *Server) deleteRowsLocked(sh *sheetRec, ids []int64, ignoreMissing bool, e Edit) ([]int64, []ChangeEvent, *apiError) {
	var present []int64
	for _, id := range ids {
		if sh.row(id) == nil {
			if ignoreMissing {
				continue
			}
			return nil, nil, errNotFound()
		}
		present = append(present, id)
	}
	if len(present) == 0 {
		return []int64{}, nil, nil
	}
	tx := s.begin(sh, e)
	var deleted []int64
	for _, id := range present {
		i := sh.rowPos(id)
		if i < 0 {
			continue // already removed as a child
		}
		end := sh.blockEnd(i)
		for _, r := range sh.Rows[i:end] {
			deleted = append(deleted, r.ID)
			delete(sh.rowIndex, r.ID)
			tx.record(ObjectRow, EventDeleted, r.ID, r.ID, 0)
		}
		sh.Rows = slices.Delete(sh.Rows, i, end)
	}
	return deleted, tx.commit(), nil
}

func deleteRows(s *Server, q *request) (any, *apiError) {
	raw := q.r.URL.Query().Get("ids")
	if raw == "" {
		return nil, errMissing("ids")
	}
	var ids []int64
	for _, p := range strings.Split(raw, ",") {
		id, aerr := parseID(strings.TrimSpace(p), "ids")
		if aerr != nil {
			return nil, aerr
		}
		ids = append(ids, id)
	}
	q.rows = len(ids)
	ignore, _ := strconv.ParseBool(q.r.URL.Query().Get("ignoreRowsNotFound"))
	s.mu.Lock()
	sh, aerr := s.sheetForWrite(q)
	if aerr != nil {
		s.mu.Unlock()
		return nil, aerr
	}
	deleted, evs, aerr := s.deleteRowsLocked(sh, ids, ignore, q.edit())
	version := sh.Version
	s.mu.Unlock()
	if aerr != nil {
		return nil, aerr
	}
	s.dispatch(evs)
	q.rows = max(q.rows, len(deleted)) // with their descendants
	return success(deleted, version), nil
}

func getRow(s *Server, q *request) (any, *apiError) {
	rowID, aerr := q.pathID("rowId")
	if aerr != nil {
		return nil, aerr
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	sh, aerr := s.sheetForWrite(q)
	if aerr != nil {
		return nil, aerr
	}
	i := sh.rowPos(rowID)
	if i < 0 {
		return nil, errNotFound()
	}
	var v sheetView
	for _, inc := range strings.Split(q.r.URL.Query().Get("include"), ",") {
		v.writerInfo = v.writerInfo || inc == "writerInfo"
		v.permalink = v.permalink || inc == "rowPermalink"
	}
	out := s.renderRow(sh, sh.Rows[i], i+1, sh.Columns, v)
	out.SheetID = sh.ID
	q.rows = 1
	return out, nil
}
