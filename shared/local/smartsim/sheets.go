package smartsim

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

func parseID(s, name string) (int64, *apiError) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, errBadParam(s, name)
	}
	return id, nil
}

func parseIDList(s, name string) (map[int64]bool, *apiError) {
	if s == "" {
		return nil, nil
	}
	out := map[int64]bool{}
	for _, p := range strings.Split(s, ",") {
		id, err := parseID(strings.TrimSpace(p), name)
		if err != nil {
			return nil, err
		}
		out[id] = true
	}
	return out, nil
}

func urlUnescape(s string) (string, error) { return url.QueryUnescape(s) }

// paging reads page/pageSize/includeAll. paged is false when none is given.
type paging struct {
	page, size int
	all, paged bool
}

func parsePaging(q url.Values) (paging, *apiError) {
	p := paging{page: 1, size: 100}
	for _, k := range []string{"page", "pageSize"} {
		v := q.Get(k)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return p, errBadParam(v, k)
		}
		if k == "page" {
			p.page = n
		} else {
			p.size = n
		}
		p.paged = true
	}
	if v := q.Get("includeAll"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return p, errBadParam(v, "includeAll")
		}
		p.all = b
	}
	return p, nil
}

// window returns the [lo,hi) slice bounds of the page and the page numbers.
func (p paging) window(n int) (lo, hi, pageNumber, pageSize, totalPages int) {
	if p.all {
		return 0, n, 1, n, 1
	}
	totalPages = (n + p.size - 1) / p.size
	pageNumber = p.page
	if totalPages > 0 && pageNumber > totalPages {
		pageNumber = totalPages
	}
	lo = min((pageNumber-1)*p.size, n)
	hi = min(lo+p.size, n)
	return lo, hi, pageNumber, p.size, totalPages
}

func indexResult[T any](p paging, items []T) smartsheet.IndexResult[T] {
	lo, hi, num, size, pages := p.window(len(items))
	data := items[lo:hi]
	if data == nil {
		data = []T{}
	}
	return smartsheet.IndexResult[T]{PageNumber: num, PageSize: size, TotalPages: pages, TotalCount: len(items), Data: data}
}

func tp(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (s *Server) permalink(kind string, id int64) string {
	return fmt.Sprintf("%s%s%d", s.opts.PermalinkBase, kind, id)
}

func (s *Server) summary(sh *sheetRec) smartsheet.SheetSummary {
	return smartsheet.SheetSummary{
		ID: sh.ID, Name: sh.Name, AccessLevel: "OWNER", Permalink: s.permalink("s", sh.ID),
		CreatedAt: tp(sh.CreatedAt), ModifiedAt: tp(sh.ModifiedAt),
	}
}

func (s *Server) sheetsSorted() []*sheetRec {
	out := make([]*sheetRec, 0, len(s.st.Sheets))
	for _, sh := range s.st.Sheets {
		out = append(out, sh)
	}
	slices.SortFunc(out, func(a, b *sheetRec) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return int(a.ID - b.ID)
	})
	return out
}

func listSheets(s *Server, q *request) (any, *apiError) {
	p, aerr := parsePaging(q.r.URL.Query())
	if aerr != nil {
		return nil, aerr
	}
	var since time.Time
	if v := q.r.URL.Query().Get("modifiedSince"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return nil, errBadParam(v, "modifiedSince")
		}
		since = t
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var items []smartsheet.SheetSummary
	for _, sh := range s.sheetsSorted() {
		if !since.IsZero() && sh.ModifiedAt.Before(since) {
			continue
		}
		items = append(items, s.summary(sh))
	}
	return indexResult(p, items), nil
}

// sheetView is what GET /sheets/{id} asked for.
type sheetView struct {
	columnIDs, rowIDs map[int64]bool
	since             time.Time
	writerInfo        bool
	permalink         bool
	format            bool
	paging            paging
}

// renderRow builds the wire row with a cell for every (selected) column.
func (s *Server) renderRow(sh *sheetRec, r *rowRec, num int, cols []smartsheet.Column, v sheetView) smartsheet.Row {
	exp := true
	out := smartsheet.Row{
		ID: r.ID, RowNumber: num, Expanded: &exp, ParentID: r.ParentID,
		CreatedAt: tp(r.CreatedAt), ModifiedAt: tp(r.ModifiedAt),
		Cells: make([]smartsheet.Cell, 0, len(cols)),
	}
	if v.writerInfo {
		cb, mb := r.CreatedBy, r.ModifiedBy
		out.CreatedBy, out.ModifiedBy = &cb, &mb
	}
	if v.permalink {
		out.Permalink = s.permalink("r", r.ID)
	}
	for _, c := range cols {
		cell := smartsheet.Cell{ColumnID: c.ID}
		if cr := r.Cells[c.ID]; cr != nil {
			cell.Value, cell.DisplayValue, cell.Formula = cr.Value, cr.DisplayValue, cr.Formula
			cell.Hyperlink, cell.LinkInFromCell = cr.Hyperlink, cr.LinkInFromCell
			if v.format {
				cell.Format = cr.Format
			}
		}
		out.Cells = append(out.Cells, cell)
	}
	return out
}

func (s *Server) renderSheet(sh *sheetRec, v sheetView) smartsheet.Sheet {
	out := smartsheet.Sheet{
		ID: sh.ID, Name: sh.Name, Version: sh.Version, AccessLevel: "OWNER",
		Permalink: s.permalink("s", sh.ID), CreatedAt: tp(sh.CreatedAt), ModifiedAt: tp(sh.ModifiedAt),
	}
	cols := make([]smartsheet.Column, 0, len(sh.Columns))
	for _, c := range sh.Columns {
		if v.columnIDs == nil || v.columnIDs[c.ID] {
			if !v.format {
				c.Format = "" // Smartsheet sends it only with include=format
			}
			cols = append(cols, c)
		}
	}
	out.Columns = cols
	type numbered struct {
		r   *rowRec
		num int
	}
	rows := make([]numbered, 0, len(sh.Rows))
	for i, r := range sh.Rows {
		if v.rowIDs != nil && !v.rowIDs[r.ID] {
			continue
		}
		if !v.since.IsZero() && r.ModifiedAt.Before(v.since) {
			continue
		}
		rows = append(rows, numbered{r, i + 1})
	}
	// totalRowCount is "the total number of rows in the sheet" (spec), not
	// the number matched by rowIds or rowsModifiedSince.
	out.TotalRowCount = len(sh.Rows)
	if v.paging.paged && !v.paging.all {
		lo, hi, _, _, _ := v.paging.window(len(rows))
		rows = rows[lo:hi]
	}
	out.Rows = make([]smartsheet.Row, 0, len(rows))
	for _, n := range rows {
		out.Rows = append(out.Rows, s.renderRow(sh, n.r, n.num, cols, v))
	}
	return out
}

func getSheet(s *Server, q *request) (any, *apiError) {
	id, aerr := q.pathID("sheetId")
	if aerr != nil {
		return nil, aerr
	}
	qs := q.r.URL.Query()
	var v sheetView
	if v.columnIDs, aerr = parseIDList(qs.Get("columnIds"), "columnIds"); aerr != nil {
		return nil, aerr
	}
	if v.rowIDs, aerr = parseIDList(qs.Get("rowIds"), "rowIds"); aerr != nil {
		return nil, aerr
	}
	if t := qs.Get("rowsModifiedSince"); t != "" {
		at, err := time.Parse(time.RFC3339, t)
		if err != nil {
			return nil, errBadParam(t, "rowsModifiedSince")
		}
		v.since = at
	}
	for _, inc := range strings.Split(qs.Get("include"), ",") {
		switch strings.TrimSpace(inc) {
		case "writerInfo":
			v.writerInfo = true
		case "rowPermalink":
			v.permalink = true
		case "format":
			v.format = true
		}
	}
	if v.paging, aerr = parsePaging(qs); aerr != nil {
		return nil, aerr
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	sh := s.st.Sheets[id]
	if sh == nil {
		return nil, errNotFound()
	}
	if t := qs.Get("ifVersionAfter"); t != "" {
		n, err := strconv.ParseInt(t, 10, 64)
		if err != nil {
			return nil, errBadParam(t, "ifVersionAfter")
		}
		if sh.Version <= n {
			return map[string]int64{"version": sh.Version}, nil
		}
	}
	out := s.renderSheet(sh, v)
	q.rows = len(out.Rows)
	return out, nil
}

func getSheetVersion(s *Server, q *request) (any, *apiError) {
	id, aerr := q.pathID("sheetId")
	if aerr != nil {
		return nil, aerr
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	sh := s.st.Sheets[id]
	if sh == nil {
		return nil, errNotFound()
	}
	return map[string]int64{"version": sh.Version}, nil
}

// validColumnTypes are the column types a sheet may be created with.
var validColumnTypes = map[string]bool{
	smartsheet.TypeTextNumber: true, smartsheet.TypeDate: true, smartsheet.TypeDateTime: true,
	smartsheet.TypeCheckbox: true, smartsheet.TypePicklist: true, smartsheet.TypeContact: true,
	"MULTI_CONTACT_LIST": true, "MULTI_PICKLIST": true, "DURATION": true, "PREDECESSOR": true, "ABSTRACT_DATETIME": true,
}

// prepareColumn validates a new column and fills Smartsheet's defaults.
func (s *Server) prepareColumn(c smartsheet.Column) (smartsheet.Column, *apiError) {
	if c.Title == "" {
		return c, errMissing("column.title")
	}
	if c.Type == "" {
		c.Type = smartsheet.TypeTextNumber
	}
	if !validColumnTypes[c.Type] {
		return c, errBadParam(c.Type, "column.type")
	}
	if c.ID == 0 {
		c.ID = s.st.nextID()
	}
	if c.Validation == nil {
		f := false
		c.Validation = &f
	}
	if c.Width == 0 {
		c.Width = 150
	}
	if !validFormat(c.Format) {
		return c, errBadFormat(c.Format)
	}
	c.Locked = normLocked(c.Locked)
	return c, nil
}

// normLocked keeps locked only when true: Smartsheet omits "locked" from
// unlocked columns. The simulator stores and returns the flag but does not
// enforce it (every token may still write a locked column's cells), because
// its tokens are not split into sheet admins and editors.
func normLocked(b *bool) *bool {
	if b == nil || !*b {
		return nil
	}
	t := true
	return &t
}

// newSheet validates and builds a sheet from its wire form. Ids given in the
// input (sheet, columns, rows) are kept; missing ones are generated. Callers
// hold s.mu.
func (s *Server) newSheet(in smartsheet.Sheet, e Edit) (*sheetRec, *apiError) {
	if in.Name == "" {
		return nil, errMissing("sheet.name")
	}
	if len(in.Columns) == 0 {
		return nil, &apiError{status: 400, code: 1054, msg: "The new sheet requires either a fromId or columns."}
	}
	primaries := 0
	for _, c := range in.Columns {
		if c.Primary {
			primaries++
		}
	}
	if primaries != 1 {
		return nil, &apiError{status: 400, code: 1018, msg: fmt.Sprintf("A sheet must have exactly one primary column (got %d).", primaries)}
	}
	if in.ID != 0 {
		if _, dup := s.st.Sheets[in.ID]; dup {
			return nil, errBadParam(strconv.FormatInt(in.ID, 10), "sheet.id")
		}
	}
	sh := &sheetRec{ID: in.ID, Name: in.Name, Version: in.Version}
	if sh.ID == 0 {
		sh.ID = s.st.nextID()
	}
	for i, c := range in.Columns {
		pc, aerr := s.prepareColumn(c)
		if aerr != nil {
			return nil, aerr
		}
		pc.Index = i
		sh.Columns = append(sh.Columns, pc)
	}
	at := e.At
	if at.IsZero() {
		at = s.clk.now()
	}
	sh.CreatedAt, sh.ModifiedAt = at, at
	sh.reindex()
	if len(in.Rows) > 0 {
		tx := s.begin(sh, e)
		base := tx.edit
		for i, r := range in.Rows {
			tx.edit = base
			if r.CreatedAt != nil {
				tx.edit.At = r.CreatedAt.UTC().Truncate(time.Second)
			}
			if r.CreatedBy != nil {
				tx.edit.User = *r.CreatedBy
			}
			row := tx.newRow()
			if r.ID != 0 {
				row.ID = r.ID
			}
			for _, c := range r.Cells {
				col := sh.column(c.ColumnID)
				if col == nil {
					return nil, errBadColumn(c.ColumnID, i)
				}
				cc, aerr := s.normalizeCell(col, c)
				if aerr != nil {
					aerr.detail = map[string]int{"index": i}
					return nil, aerr
				}
				tx.setCell(row, c.ColumnID, cc, true)
			}
			sh.Rows = append(sh.Rows, row)
			sh.rowIndex[row.ID] = row
			if row.ModifiedAt.After(sh.ModifiedAt) {
				sh.ModifiedAt = row.ModifiedAt
			}
		}
		// Rows given with the sheet are its initial content: no events.
		if sh.Version == 0 {
			sh.Version = 1
		}
	}
	return sh, nil
}

func errBadColumn(id int64, index int) *apiError {
	return &apiError{status: 400, code: 1036, msg: fmt.Sprintf("The columnId %d is invalid.", id), detail: map[string]int{"index": index}}
}

// CreateSheet creates a sheet from its wire form, in a folder or workspace
// (0 for the home "Sheets" folder). Column, row and sheet ids set in the input
// are kept, so tests can reproduce fixtures. Rows may carry cells; their
// values go through the same validation and history as API writes.
func (s *Server) CreateSheet(in smartsheet.Sheet, folderID, workspaceID int64, e Edit) (smartsheet.Sheet, error) {
	s.mu.Lock()
	out, evs, aerr := s.createSheetLocked(in, folderID, workspaceID, e)
	s.mu.Unlock()
	if aerr != nil {
		return smartsheet.Sheet{}, aerr
	}
	s.dispatch(evs)
	return out, nil
}

func (s *Server) createSheetLocked(in smartsheet.Sheet, folderID, workspaceID int64, e Edit) (smartsheet.Sheet, []ChangeEvent, *apiError) {
	if folderID != 0 && s.st.Folders[folderID] == nil {
		return smartsheet.Sheet{}, nil, errNotFound()
	}
	if workspaceID != 0 && s.st.Workspaces[workspaceID] == nil {
		return smartsheet.Sheet{}, nil, errNotFound()
	}
	sh, aerr := s.newSheet(in, e)
	if aerr != nil {
		return smartsheet.Sheet{}, nil, aerr
	}
	sh.FolderID, sh.WorkspaceID = folderID, workspaceID
	s.st.Sheets[sh.ID] = sh
	evs := s.begin(sh, e).commitCreated()
	out := s.renderSheet(sh, sheetView{format: true}) // echo the columns as created
	out.Rows, out.TotalRowCount, out.Version = nil, 0, 0
	return out, evs, nil
}

func createSheet(s *Server, q *request) (any, *apiError) {
	var folderID, workspaceID int64
	var aerr *apiError
	if q.r.PathValue("folderId") != "" {
		if folderID, aerr = q.pathID("folderId"); aerr != nil {
			return nil, aerr
		}
	}
	if q.r.PathValue("workspaceId") != "" {
		if workspaceID, aerr = q.pathID("workspaceId"); aerr != nil {
			return nil, aerr
		}
	}
	var in smartsheet.Sheet
	if aerr := decodeBody(q.r, &in); aerr != nil {
		return nil, aerr
	}
	in.ID, in.Rows, in.Version = 0, nil, 0
	for i := range in.Columns {
		in.Columns[i].ID = 0
	}
	s.mu.Lock()
	out, evs, aerr := s.createSheetLocked(in, folderID, workspaceID, q.edit())
	s.mu.Unlock()
	if aerr != nil {
		return nil, aerr
	}
	s.dispatch(evs)
	return success(out, 0), nil
}

// CreateFolder creates a folder under a parent folder, a workspace, or home
// (both 0), and returns its id.
func (s *Server) CreateFolder(name string, parentID, workspaceID int64) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if parentID != 0 && s.st.Folders[parentID] == nil {
		return 0, fmt.Errorf("smartsim: folder %d not found", parentID)
	}
	if workspaceID != 0 && s.st.Workspaces[workspaceID] == nil {
		return 0, fmt.Errorf("smartsim: workspace %d not found", workspaceID)
	}
	f := &folderRec{ID: s.st.nextID(), Name: name, ParentID: parentID, WorkspaceID: workspaceID}
	s.st.Folders[f.ID] = f
	return f.ID, nil
}

// CreateWorkspace creates a workspace and returns its id.
func (s *Server) CreateWorkspace(name string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := &workspaceRec{ID: s.st.nextID(), Name: name}
	s.st.Workspaces[w.ID] = w
	return w.ID
}

// folderTree renders a folder with its sheets and sub-folders, recursively.
func (s *Server) folderTree(f *folderRec) smartsheet.Folder {
	out := smartsheet.Folder{ID: f.ID, Name: f.Name, Permalink: s.permalink("f", f.ID)}
	for _, sh := range s.sheetsSorted() {
		if sh.FolderID == f.ID {
			out.Sheets = append(out.Sheets, s.summary(sh))
		}
	}
	out.Folders = s.subFolders(func(c *folderRec) bool { return c.ParentID == f.ID })
	return out
}

func (s *Server) subFolders(match func(*folderRec) bool) []smartsheet.Folder {
	var kids []*folderRec
	for _, c := range s.st.Folders {
		if match(c) {
			kids = append(kids, c)
		}
	}
	slices.SortFunc(kids, func(a, b *folderRec) int { return strings.Compare(a.Name, b.Name) })
	var out []smartsheet.Folder
	for _, c := range kids {
		out = append(out, s.folderTree(c))
	}
	return out
}

func getFolder(s *Server, q *request) (any, *apiError) {
	id, aerr := q.pathID("folderId")
	if aerr != nil {
		return nil, aerr
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	f := s.st.Folders[id]
	if f == nil {
		return nil, errNotFound()
	}
	return s.folderTree(f), nil
}

func listWorkspaces(s *Server, q *request) (any, *apiError) {
	p, aerr := parsePaging(q.r.URL.Query())
	if aerr != nil {
		return nil, aerr
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var items []smartsheet.Workspace
	for _, w := range s.st.Workspaces {
		items = append(items, smartsheet.Workspace{ID: w.ID, Name: w.Name, AccessLevel: "OWNER", Permalink: s.permalink("w", w.ID)})
	}
	slices.SortFunc(items, func(a, b smartsheet.Workspace) int { return strings.Compare(a.Name, b.Name) })
	return indexResult(p, items), nil
}

func getWorkspace(s *Server, q *request) (any, *apiError) {
	id, aerr := q.pathID("workspaceId")
	if aerr != nil {
		return nil, aerr
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	w := s.st.Workspaces[id]
	if w == nil {
		return nil, errNotFound()
	}
	out := smartsheet.Workspace{ID: w.ID, Name: w.Name, AccessLevel: "OWNER", Permalink: s.permalink("w", w.ID)}
	for _, sh := range s.sheetsSorted() {
		if sh.WorkspaceID == w.ID && sh.FolderID == 0 {
			out.Sheets = append(out.Sheets, s.summary(sh))
		}
	}
	out.Folders = s.subFolders(func(c *folderRec) bool { return c.WorkspaceID == w.ID && c.ParentID == 0 })
	return out, nil
}

func getCurrentUser(s *Server, q *request) (any, *apiError) {
	first, last, _ := strings.Cut(q.user.Name, " ")
	return smartsheet.UserProfile{
		ID: userID(q.user.Email), Email: q.user.Email, FirstName: first, LastName: last,
		Locale: "en_US", TimeZone: "UTC",
	}, nil
}

func serverInfo(s *Server, q *request) (any, *apiError) {
	return map[string]any{
		"supportedLocales": []string{"en_US"},
		"formats": map[string]any{
			"defaults":           ",,,,,,,,,,,,,,,,",
			"color":              []string{"none", "#000000", "#FFFFFF", "#C6C6C6", "#FFEBEE", "#FFF3DF", "#FFFEE6", "#E7F5E9", "#E2F2FE", "#E6E1FA", "#F7E0F1"},
			"currency":           currencyTable,
			"decimalCount":       []string{"0", "1", "2", "3", "4", "5"},
			"thousandsSeparator": []string{"none", "on"},
			"numberFormat":       []string{"none", "NUMBER", "CURRENCY", "PERCENT"},
		},
	}, nil
}
