package smartsim

import (
	"fmt"

	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// SetCell writes one cell as e.User at e.At (zero: now), through the same
// validation, history and event path as PUT /sheets/{id}/rows.
func (s *Server) SetCell(e Edit, sheetID, rowID, columnID int64, v smartsheet.Value) (smartsheet.Row, error) {
	rows, err := s.UpdateRows(e, sheetID, []smartsheet.Row{{ID: rowID, Cells: []smartsheet.Cell{{ColumnID: columnID, Value: v}}}})
	if err != nil {
		return smartsheet.Row{}, err
	}
	return rows[0], nil
}

// AutomationSetCell writes one cell as Smartsheet automation
// (automation@smartsheet.com), like a workflow that changes a value.
func (s *Server) AutomationSetCell(at Edit, sheetID, rowID, columnID int64, v smartsheet.Value) (smartsheet.Row, error) {
	at.User = AutomationUser
	return s.SetCell(at, sheetID, rowID, columnID, v)
}

// AddRows adds rows as e.User (location fields as in the API; none: bottom).
func (s *Server) AddRows(e Edit, sheetID int64, rows []smartsheet.Row) ([]smartsheet.Row, error) {
	return s.writeRowsAs(e, sheetID, rows, false)
}

// UpdateRows updates rows (each with its id) as e.User.
func (s *Server) UpdateRows(e Edit, sheetID int64, rows []smartsheet.Row) ([]smartsheet.Row, error) {
	return s.writeRowsAs(e, sheetID, rows, true)
}

func (s *Server) writeRowsAs(e Edit, sheetID int64, rows []smartsheet.Row, update bool) ([]smartsheet.Row, error) {
	s.mu.Lock()
	sh := s.st.Sheets[sheetID]
	if sh == nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("sheet %d: %w", sheetID, errNotFound())
	}
	res, evs, aerr := s.writeRows(sh, rowsRequest{rows: rows, update: update}, e)
	s.mu.Unlock()
	if aerr != nil {
		return nil, fmt.Errorf("sheet %d: %w", sheetID, aerr)
	}
	s.dispatch(evs)
	return res.Rows, nil
}

// DeleteRows deletes rows (and their children) as e.User and returns the
// deleted ids.
func (s *Server) DeleteRows(e Edit, sheetID int64, ids []int64) ([]int64, error) {
	s.mu.Lock()
	sh := s.st.Sheets[sheetID]
	if sh == nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("sheet %d: %w", sheetID, errNotFound())
	}
	deleted, evs, aerr := s.deleteRowsLocked(sh, ids, false, e)
	s.mu.Unlock()
	if aerr != nil {
		return nil, fmt.Errorf("sheet %d: %w", sheetID, aerr)
	}
	s.dispatch(evs)
	return deleted, nil
}

// Sheet returns the whole sheet as GET /sheets/{id}?include=writerInfo would.
func (s *Server) Sheet(sheetID int64) (smartsheet.Sheet, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sh := s.st.Sheets[sheetID]
	if sh == nil {
		return smartsheet.Sheet{}, fmt.Errorf("sheet %d: %w", sheetID, errNotFound())
	}
	return s.renderSheet(sh, sheetView{writerInfo: true}), nil
}

// SheetIDs returns the ids of all sheets, sorted by name.
func (s *Server) SheetIDs() []int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []int64
	for _, sh := range s.sheetsSorted() {
		out = append(out, sh.ID)
	}
	return out
}

// ErrorCode returns the Smartsheet errorCode of an error from the Go API, or 0.
func ErrorCode(err error) int {
	var ae *apiError
	if asAPIError(err, &ae) {
		return ae.code
	}
	return 0
}

// DeleteSheet removes a sheet, as its owner deleting it: every later call
// naming it answers 404 (errorCode 1006), and its folder no longer lists it.
func (s *Server) DeleteSheet(sheetID int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.Sheets[sheetID] == nil {
		return fmt.Errorf("sheet %d: %w", sheetID, errNotFound())
	}
	delete(s.st.Sheets, sheetID)
	return nil
}
