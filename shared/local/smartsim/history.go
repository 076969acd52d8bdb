package smartsim

import (
	"fmt"

	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// cellHistoryLocked returns a cell's history, newest first. Callers hold s.mu.
func (s *Server) cellHistoryLocked(sheetID, rowID, columnID int64) ([]smartsheet.CellHistory, *apiError) {
	sh := s.st.Sheets[sheetID]
	if sh == nil {
		return nil, errNotFound()
	}
	r := sh.row(rowID)
	if r == nil {
		return nil, errNotFound()
	}
	col := sh.column(columnID)
	if col == nil {
		return nil, errBadColumn(columnID, 0)
	}
	out := []smartsheet.CellHistory{}
	c := r.Cells[columnID]
	if c == nil {
		return out, nil
	}
	for i := len(c.History) - 1; i >= 0; i-- {
		h := c.History[i]
		at, by := h.At, h.By
		out = append(out, smartsheet.CellHistory{
			ColumnID: columnID, Value: h.Value, DisplayValue: h.DisplayValue,
			ModifiedAt: &at, ModifiedBy: &by,
		})
	}
	return out, nil
}

// CellHistory returns a cell's history, newest first, as the API would.
func (s *Server) CellHistory(sheetID, rowID, columnID int64) ([]smartsheet.CellHistory, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	h, aerr := s.cellHistoryLocked(sheetID, rowID, columnID)
	if aerr != nil {
		return nil, fmt.Errorf("cell history %d/%d/%d: %w", sheetID, rowID, columnID, aerr)
	}
	return h, nil
}

func cellHistory(s *Server, q *request) (any, *apiError) {
	var ids [3]int64
	for i, name := range []string{"sheetId", "rowId", "columnId"} {
		id, aerr := q.pathID(name)
		if aerr != nil {
			return nil, aerr
		}
		ids[i] = id
	}
	p, aerr := parsePaging(q.r.URL.Query())
	if aerr != nil {
		return nil, aerr
	}
	s.mu.RLock()
	h, aerr := s.cellHistoryLocked(ids[0], ids[1], ids[2])
	s.mu.RUnlock()
	if aerr != nil {
		return nil, aerr
	}
	return indexResult(p, h), nil
}
