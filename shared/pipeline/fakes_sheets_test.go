package pipeline

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// Function-field fakes of the Smartsheet ports: the source sheets and the
// audit sheet (see fakes_test.go).

// fakeSources is a function-field fake of SourceSheets.
type fakeSources struct {
	GetSheetFunc         func(ctx context.Context, sheetID int64, opts smartsheet.GetSheetOptions) (*smartsheet.Sheet, bool, error)
	ForEachSheetPageFunc func(ctx context.Context, sheetID int64, opts smartsheet.GetSheetOptions, fn func(*smartsheet.Sheet) error) error
	DiscoverSheetsFunc   func(ctx context.Context, folderIDs, workspaceIDs []int64) ([]smartsheet.DiscoveredSheet, error)
	CellHistoryFunc      func(ctx context.Context, sheetID, rowID, columnID int64) ([]smartsheet.CellHistory, error)
}

var _ SourceSheets = (*fakeSources)(nil)

func (f *fakeSources) GetSheet(ctx context.Context, id int64, o smartsheet.GetSheetOptions) (*smartsheet.Sheet, bool, error) {
	return f.GetSheetFunc(ctx, id, o)
}
func (f *fakeSources) ForEachSheetPage(ctx context.Context, id int64, o smartsheet.GetSheetOptions, fn func(*smartsheet.Sheet) error) error {
	return f.ForEachSheetPageFunc(ctx, id, o, fn)
}
func (f *fakeSources) DiscoverSheets(ctx context.Context, folderIDs, workspaceIDs []int64) ([]smartsheet.DiscoveredSheet, error) {
	return f.DiscoverSheetsFunc(ctx, folderIDs, workspaceIDs)
}
func (f *fakeSources) CellHistory(ctx context.Context, sheetID, rowID, columnID int64) ([]smartsheet.CellHistory, error) {
	return f.CellHistoryFunc(ctx, sheetID, rowID, columnID)
}

// newFakeSources serves one source sheet, s, as a single page (a copy, so a
// test may change s between calls); no folder holds a sheet and no cell has
// a history.
func newFakeSources(s *smartsheet.Sheet) *fakeSources {
	return &fakeSources{
		GetSheetFunc: func(_ context.Context, id int64, _ smartsheet.GetSheetOptions) (*smartsheet.Sheet, bool, error) {
			if id != s.ID {
				return nil, false, fmt.Errorf("sheet %d: not found", id)
			}
			c := *s
			return &c, false, nil
		},
		ForEachSheetPageFunc: func(_ context.Context, id int64, _ smartsheet.GetSheetOptions, fn func(*smartsheet.Sheet) error) error {
			if id != s.ID {
				return fmt.Errorf("sheet %d: not found", id)
			}
			c := *s
			return fn(&c)
		},
		DiscoverSheetsFunc: func(context.Context, []int64, []int64) ([]smartsheet.DiscoveredSheet, error) { return nil, nil },
		CellHistoryFunc:    func(context.Context, int64, int64, int64) ([]smartsheet.CellHistory, error) { return nil, nil },
	}
}

// fakeAuditSheet is a function-field fake of AuditSheet.
type fakeAuditSheet struct {
	GetSheetFunc            func(ctx context.Context, sheetID int64, opts smartsheet.GetSheetOptions) (*smartsheet.Sheet, bool, error)
	ForEachSheetPageFunc    func(ctx context.Context, sheetID int64, opts smartsheet.GetSheetOptions, fn func(*smartsheet.Sheet) error) error
	GetSummaryFieldsFunc    func(ctx context.Context, sheetID int64) ([]smartsheet.SummaryField, error)
	AddRowsFunc             func(ctx context.Context, sheetID int64, rows []smartsheet.Row, opts smartsheet.AddRowsOptions) (*smartsheet.RowsResult, error)
	AddSummaryFieldsFunc    func(ctx context.Context, sheetID int64, fields []smartsheet.SummaryField) ([]smartsheet.SummaryField, error)
	UpdateSummaryFieldsFunc func(ctx context.Context, sheetID int64, fields []smartsheet.SummaryField) ([]smartsheet.SummaryField, error)
	ListAttachmentsFunc     func(ctx context.Context, sheetID int64) ([]smartsheet.Attachment, error)
	AttachFileFunc          func(ctx context.Context, sheetID int64, name, contentType string, content io.Reader) (*smartsheet.Attachment, error)
	AttachNewVersionFunc    func(ctx context.Context, sheetID, attachmentID int64, name, contentType string, content io.Reader) (*smartsheet.Attachment, error)
}

var _ AuditSheet = (*fakeAuditSheet)(nil)

func (f *fakeAuditSheet) GetSheet(ctx context.Context, id int64, o smartsheet.GetSheetOptions) (*smartsheet.Sheet, bool, error) {
	return f.GetSheetFunc(ctx, id, o)
}
func (f *fakeAuditSheet) ForEachSheetPage(ctx context.Context, id int64, o smartsheet.GetSheetOptions, fn func(*smartsheet.Sheet) error) error {
	return f.ForEachSheetPageFunc(ctx, id, o, fn)
}
func (f *fakeAuditSheet) GetSummaryFields(ctx context.Context, id int64) ([]smartsheet.SummaryField, error) {
	return f.GetSummaryFieldsFunc(ctx, id)
}
func (f *fakeAuditSheet) AddRows(ctx context.Context, id int64, rows []smartsheet.Row, o smartsheet.AddRowsOptions) (*smartsheet.RowsResult, error) {
	return f.AddRowsFunc(ctx, id, rows, o)
}
func (f *fakeAuditSheet) AddSummaryFields(ctx context.Context, id int64, fields []smartsheet.SummaryField) ([]smartsheet.SummaryField, error) {
	return f.AddSummaryFieldsFunc(ctx, id, fields)
}
func (f *fakeAuditSheet) UpdateSummaryFields(ctx context.Context, id int64, fields []smartsheet.SummaryField) ([]smartsheet.SummaryField, error) {
	return f.UpdateSummaryFieldsFunc(ctx, id, fields)
}
func (f *fakeAuditSheet) ListAttachments(ctx context.Context, id int64) ([]smartsheet.Attachment, error) {
	return f.ListAttachmentsFunc(ctx, id)
}
func (f *fakeAuditSheet) AttachFile(ctx context.Context, id int64, name, contentType string, content io.Reader) (*smartsheet.Attachment, error) {
	return f.AttachFileFunc(ctx, id, name, contentType, content)
}
func (f *fakeAuditSheet) AttachNewVersion(ctx context.Context, id, attachmentID int64, name, contentType string, content io.Reader) (*smartsheet.Attachment, error) {
	return f.AttachNewVersionFunc(ctx, id, attachmentID, name, contentType, content)
}

// memAuditSheet is the in-memory audit sheet behind newFakeAuditSheet's
// fields: the AuditColumns layout, rows appended at the bottom, the summary
// and the attachments.
type memAuditSheet struct {
	mu          sync.Mutex
	id          int64
	nextID      int64
	columns     []smartsheet.Column
	rows        []smartsheet.Row
	summary     []smartsheet.SummaryField
	attachments []smartsheet.Attachment
}

func newFakeAuditSheet(id int64) (*fakeAuditSheet, *memAuditSheet) {
	m := &memAuditSheet{id: id, nextID: 9000}
	for i, c := range AuditColumns {
		c.ID, c.Index = int64(100+i), i
		m.columns = append(m.columns, c)
	}
	return &fakeAuditSheet{
		GetSheetFunc: m.GetSheet, ForEachSheetPageFunc: m.ForEachSheetPage, GetSummaryFieldsFunc: m.GetSummaryFields,
		AddRowsFunc: m.AddRows, AddSummaryFieldsFunc: m.AddSummaryFields, UpdateSummaryFieldsFunc: m.UpdateSummaryFields,
		ListAttachmentsFunc: m.ListAttachments, AttachFileFunc: m.AttachFile, AttachNewVersionFunc: m.AttachNewVersion,
	}, m
}

func (m *memAuditSheet) sheet(id int64) (*smartsheet.Sheet, error) {
	if id != m.id {
		return nil, fmt.Errorf("audit sheet %d: not found", id)
	}
	return &smartsheet.Sheet{ID: m.id, Name: "Billing Audit Log", Version: int64(len(m.rows)), TotalRowCount: len(m.rows),
		Columns: slices.Clone(m.columns), Rows: slices.Clone(m.rows)}, nil
}

func (m *memAuditSheet) GetSheet(_ context.Context, id int64, _ smartsheet.GetSheetOptions) (*smartsheet.Sheet, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, err := m.sheet(id)
	return s, false, err
}

func (m *memAuditSheet) ForEachSheetPage(_ context.Context, id int64, _ smartsheet.GetSheetOptions, fn func(*smartsheet.Sheet) error) error {
	m.mu.Lock()
	s, err := m.sheet(id)
	m.mu.Unlock()
	if err != nil {
		return err
	}
	return fn(s)
}

func (m *memAuditSheet) AddRows(_ context.Context, id int64, rows []smartsheet.Row, _ smartsheet.AddRowsOptions) (*smartsheet.RowsResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id != m.id {
		return nil, fmt.Errorf("audit sheet %d: not found", id)
	}
	res := &smartsheet.RowsResult{}
	for _, r := range rows {
		m.nextID++
		r.ID, r.SheetID, r.RowNumber = m.nextID, id, len(m.rows)+1
		m.rows = append(m.rows, r)
		res.Rows = append(res.Rows, r)
	}
	return res, nil
}

func (m *memAuditSheet) GetSummaryFields(context.Context, int64) ([]smartsheet.SummaryField, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.summary), nil
}

func (m *memAuditSheet) AddSummaryFields(_ context.Context, _ int64, fields []smartsheet.SummaryField) ([]smartsheet.SummaryField, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var added []smartsheet.SummaryField
	for _, f := range fields {
		m.nextID++
		f.ID = m.nextID
		m.summary = append(m.summary, f)
		added = append(added, f)
	}
	return added, nil
}

func (m *memAuditSheet) UpdateSummaryFields(_ context.Context, _ int64, fields []smartsheet.SummaryField) ([]smartsheet.SummaryField, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, f := range fields {
		i := slices.IndexFunc(m.summary, func(s smartsheet.SummaryField) bool { return s.ID == f.ID })
		if i < 0 {
			return nil, fmt.Errorf("summary field %d: not found", f.ID)
		}
		if !f.ObjectValue.IsZero() {
			m.summary[i].ObjectValue = f.ObjectValue
		}
		if f.Locked != nil {
			m.summary[i].Locked = f.Locked
		}
	}
	return fields, nil
}

func (m *memAuditSheet) ListAttachments(context.Context, int64) ([]smartsheet.Attachment, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.attachments), nil
}

func (m *memAuditSheet) AttachFile(_ context.Context, _ int64, name, contentType string, content io.Reader) (*smartsheet.Attachment, error) {
	if _, err := io.Copy(io.Discard, content); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nextID++
	a := smartsheet.Attachment{ID: m.nextID, Name: name, MimeType: contentType}
	m.attachments = append(m.attachments, a)
	return &a, nil
}

func (m *memAuditSheet) AttachNewVersion(ctx context.Context, id, _ int64, name, contentType string, content io.Reader) (*smartsheet.Attachment, error) {
	return m.AttachFile(ctx, id, name, contentType, content)
}
