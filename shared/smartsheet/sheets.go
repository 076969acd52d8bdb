package smartsheet

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Values of GetSheetOptions.Include.
const (
	IncludeWriterInfo   = "writerInfo"   // rows carry createdBy/modifiedBy
	IncludeRowPermalink = "rowPermalink" // rows carry their permalink
	IncludeFormat       = "format"       // columns and cells carry their format
)

// GetSheetOptions narrows GET /sheets/{id}. Zero values are not sent.
type GetSheetOptions struct {
	// ColumnIDs trims the columns and cells returned.
	ColumnIDs []int64
	// RowIDs returns only these rows.
	RowIDs []int64
	// RowsModifiedSince returns only rows changed since then.
	RowsModifiedSince *time.Time
	// Include adds optional elements (IncludeWriterInfo, IncludeRowPermalink).
	Include []string
	// IfVersionAfter makes an unchanged sheet answer only {"version":N}.
	IfVersionAfter *int64
	// Page (1-based) and PageSize page the rows (server default: 100 rows).
	Page     int
	PageSize int
}

func (o GetSheetOptions) query() url.Values {
	q := url.Values{}
	if len(o.ColumnIDs) > 0 {
		q.Set("columnIds", joinIDs(o.ColumnIDs))
	}
	if len(o.RowIDs) > 0 {
		q.Set("rowIds", joinIDs(o.RowIDs))
	}
	if o.RowsModifiedSince != nil {
		q.Set("rowsModifiedSince", formatTime(*o.RowsModifiedSince))
	}
	if len(o.Include) > 0 {
		q.Set("include", strings.Join(o.Include, ","))
	}
	if o.IfVersionAfter != nil {
		q.Set("ifVersionAfter", strconv.FormatInt(*o.IfVersionAfter, 10))
	}
	if o.Page > 0 {
		q.Set("page", strconv.Itoa(o.Page))
	}
	if o.PageSize > 0 {
		q.Set("pageSize", strconv.Itoa(o.PageSize))
	}
	return q
}

// GetSheet reads a sheet (one page of rows when Page/PageSize are set). With
// IfVersionAfter and an unchanged sheet it returns a Sheet holding only the
// Version, and unchanged=true.
func (c *Client) GetSheet(ctx context.Context, sheetID int64, opts GetSheetOptions) (sheet *Sheet, unchanged bool, err error) {
	var s Sheet
	err = c.do(ctx, &call{endpoint: "GET /sheets/{sheetId}", method: "GET", path: "/sheets/" + id(sheetID), query: opts.query()}, sheetTarget{&s})
	if err != nil {
		return nil, false, fmt.Errorf("get sheet %d: %w", sheetID, err)
	}
	if opts.IfVersionAfter != nil && isVersionOnly(&s) {
		return &s, true, nil
	}
	return &s, false, nil
}

// isVersionOnly reports the {"version":N} answer of an unchanged sheet.
func isVersionOnly(s *Sheet) bool {
	return s.ID == 0 && s.Name == "" && len(s.Columns) == 0 && len(s.Rows) == 0
}

// DefaultSheetPageSize is the rows per page of ForEachSheetPage when
// opts.PageSize is 0.
const DefaultSheetPageSize = 500

// ForEachSheetPage reads a sheet page by page and calls fn with each page (the
// sheet with its columns and that page's rows), so memory is bounded by one
// page. opts.Page is ignored. fn is called at least once (an empty sheet gives
// one page without rows) unless opts.IfVersionAfter is set and the sheet is
// unchanged, in which case fn is not called. If the sheet's version changes
// between pages the walk stops with an error wrapping ErrSheetChanged.
// An error returned by fn stops the walk and is returned as is.
func (c *Client) ForEachSheetPage(ctx context.Context, sheetID int64, opts GetSheetOptions, fn func(*Sheet) error) error {
	if opts.PageSize <= 0 {
		opts.PageSize = DefaultSheetPageSize
	}
	var version int64
	var prevFirstRow int64
	for page := 1; page <= maxPages; page++ {
		opts.Page = page
		s, unchanged, err := c.GetSheet(ctx, sheetID, opts)
		if err != nil {
			return err
		}
		if unchanged {
			return nil
		}
		opts.IfVersionAfter = nil // known changed; later pages need the full answer
		if page == 1 {
			version = s.Version
		} else if s.Version != version {
			return fmt.Errorf("get sheet %d page %d: version %d, was %d: %w", sheetID, page, s.Version, version, ErrSheetChanged)
		}
		// A page past the end answers the last page again: stop on a repeat.
		if page > 1 && len(s.Rows) > 0 && s.Rows[0].ID == prevFirstRow {
			return nil
		}
		n := len(s.Rows)
		if n > 0 {
			prevFirstRow = s.Rows[0].ID
		}
		if err := fn(s); err != nil {
			return err
		}
		if n < opts.PageSize || page*opts.PageSize >= s.TotalRowCount {
			return nil
		}
	}
	return nil
}

// ListSheetsOptions narrows GET /sheets.
type ListSheetsOptions struct {
	// ModifiedSince lists only sheets modified since then.
	ModifiedSince *time.Time
	// Include adds optional elements (e.g. "ownerInfo", "sheetVersion").
	Include []string
	// PageSize is the page size (server default 100).
	PageSize int
}

// ListSheets lists all sheets the token can access, walking every page.
func (c *Client) ListSheets(ctx context.Context, opts ListSheetsOptions) ([]SheetSummary, error) {
	q := url.Values{}
	if opts.ModifiedSince != nil {
		q.Set("modifiedSince", formatTime(*opts.ModifiedSince))
	}
	if len(opts.Include) > 0 {
		q.Set("include", strings.Join(opts.Include, ","))
	}
	out, err := listAll[SheetSummary](ctx, c, "GET /sheets", "/sheets", q, opts.PageSize, limitGeneral)
	if err != nil {
		return nil, fmt.Errorf("list sheets: %w", err)
	}
	return out, nil
}

// newColumn is the column shape of a create-sheet request: no id or index
// (the order gives the index) and primary always explicit.
type newColumn struct {
	Title            string          `json:"title"`
	Primary          bool            `json:"primary"`
	Type             string          `json:"type,omitempty"`
	SystemColumnType string          `json:"systemColumnType,omitempty"`
	Options          []string        `json:"options,omitempty"`
	ContactOptions   []User          `json:"contactOptions,omitempty"`
	AutoNumberFormat json.RawMessage `json:"autoNumberFormat,omitempty"`
	Validation       *bool           `json:"validation,omitempty"`
	Width            int             `json:"width,omitempty"`
	Locked           *bool           `json:"locked,omitempty"`
	Hidden           bool            `json:"hidden,omitempty"`
	Description      string          `json:"description,omitempty"`
	Format           string          `json:"format,omitempty"`
}

type newSheet struct {
	Name    string      `json:"name"`
	Columns []newColumn `json:"columns"`
}

func newSheetBody(name string, cols []Column) newSheet {
	body := newSheet{Name: name, Columns: make([]newColumn, 0, len(cols))}
	for _, col := range cols {
		body.Columns = append(body.Columns, newColumn{
			Title: col.Title, Primary: col.Primary, Type: col.Type, SystemColumnType: col.SystemColumnType,
			Options: col.Options, ContactOptions: col.ContactOptions, AutoNumberFormat: col.AutoNumberFormat,
			Validation: col.Validation, Width: col.Width, Locked: col.Locked, Hidden: col.Hidden,
			Description: col.Description, Format: col.Format,
		})
	}
	return body
}

// CreateSheet creates a sheet in the "Sheets" folder. Exactly one column must
// be Primary; Index and ID of cols are ignored.
func (c *Client) CreateSheet(ctx context.Context, name string, cols []Column) (*Sheet, error) {
	return c.createSheet(ctx, "POST /sheets", "/sheets", name, cols)
}

// CreateSheetInFolder creates a sheet in a folder.
func (c *Client) CreateSheetInFolder(ctx context.Context, folderID int64, name string, cols []Column) (*Sheet, error) {
	return c.createSheet(ctx, "POST /folders/{folderId}/sheets", "/folders/"+id(folderID)+"/sheets", name, cols)
}

// CreateSheetInWorkspace creates a sheet at the top of a workspace.
func (c *Client) CreateSheetInWorkspace(ctx context.Context, workspaceID int64, name string, cols []Column) (*Sheet, error) {
	return c.createSheet(ctx, "POST /workspaces/{workspaceId}/sheets", "/workspaces/"+id(workspaceID)+"/sheets", name, cols)
}

func (c *Client) createSheet(ctx context.Context, endpoint, path, name string, cols []Column) (*Sheet, error) {
	var r Result[Sheet]
	if err := c.doJSON(ctx, endpoint, "POST", path, nil, newSheetBody(name, cols), &r, 0); err != nil {
		return nil, fmt.Errorf("create sheet %q: %w", name, err)
	}
	return &r.Result, nil
}

// AddColumns inserts columns; each needs Title, Type and Index (its position).
func (c *Client) AddColumns(ctx context.Context, sheetID int64, cols []Column) ([]Column, error) {
	var r Result[[]Column]
	if err := c.doJSON(ctx, "POST /sheets/{sheetId}/columns", "POST", "/sheets/"+id(sheetID)+"/columns", nil, cols, &r, sheetID); err != nil {
		return nil, fmt.Errorf("add columns to sheet %d: %w", sheetID, err)
	}
	return r.Result, nil
}

// ColumnUpdate is the body of an update-column request; zero fields are not
// sent (so a column is only moved when Index is set).
type ColumnUpdate struct {
	Index            *int            `json:"index,omitempty"`
	Title            string          `json:"title,omitempty"`
	Type             string          `json:"type,omitempty"`
	Options          []string        `json:"options,omitempty"`
	ContactOptions   []User          `json:"contactOptions,omitempty"`
	SystemColumnType string          `json:"systemColumnType,omitempty"`
	AutoNumberFormat json.RawMessage `json:"autoNumberFormat,omitempty"`
	Validation       *bool           `json:"validation,omitempty"`
	Width            int             `json:"width,omitempty"`
	Locked           *bool           `json:"locked,omitempty"`
	Hidden           *bool           `json:"hidden,omitempty"`
	Description      *string         `json:"description,omitempty"`
	// Format sets the column's format descriptor (e.g. FormatCurrencyUSD);
	// empty leaves it unchanged.
	Format string `json:"format,omitempty"`
}

// UpdateColumn changes a column (title, type, options, position...).
func (c *Client) UpdateColumn(ctx context.Context, sheetID, columnID int64, u ColumnUpdate) (*Column, error) {
	var r Result[Column]
	path := "/sheets/" + id(sheetID) + "/columns/" + id(columnID)
	if err := c.doJSON(ctx, "PUT /sheets/{sheetId}/columns/{columnId}", "PUT", path, nil, u, &r, sheetID); err != nil {
		return nil, fmt.Errorf("update column %d of sheet %d: %w", columnID, sheetID, err)
	}
	return &r.Result, nil
}
