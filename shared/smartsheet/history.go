package smartsheet

import (
	"context"
	"fmt"
	"slices"
)

// historyPageSize asks for long pages: cell history has its own small budget.
const historyPageSize = 1000

// CellHistory returns a cell's history, newest first, walking all pages. Each
// page counts against the cell-history budget (HistoryPerMinute) as well as
// the overall one; call it only for cells known to have changed.
func (c *Client) CellHistory(ctx context.Context, sheetID, rowID, columnID int64) ([]CellHistory, error) {
	path := "/sheets/" + id(sheetID) + "/rows/" + id(rowID) + "/columns/" + id(columnID) + "/history"
	out, err := listAll[CellHistory](ctx, c, "GET /sheets/{sheetId}/rows/{rowId}/columns/{columnId}/history", path, nil, historyPageSize, limitHistory)
	if err != nil {
		return nil, fmt.Errorf("cell history of sheet %d row %d column %d: %w", sheetID, rowID, columnID, err)
	}
	// The API answers newest first; make sure of it across pages.
	slices.SortStableFunc(out, func(a, b CellHistory) int {
		switch {
		case a.ModifiedAt == nil || b.ModifiedAt == nil:
			return 0
		case a.ModifiedAt.After(*b.ModifiedAt):
			return -1
		case a.ModifiedAt.Before(*b.ModifiedAt):
			return 1
		}
		return 0
	})
	return out, nil
}
