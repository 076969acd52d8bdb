package smartsim

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// Billing sheet column titles, as the field crews' sheets spell them.
const (
	ColWorkRequest  = "Work Request #"
	ColWeekEnding   = "Weekly Reference Logged Date"
	ColSnapshotDate = "Snapshot Date"
	ColCompleted    = "Units Completed?"
	ColQuantity     = "Quantity"
	ColTotalPrice   = "Units Total Price"
	ColForeman      = "Foreman"
	ColCU           = "CU"
	ColWorkType     = "Work Type"
	ColPole         = "Pole #"
)

// GenConfig sizes the generated billing sheets.
type GenConfig struct {
	Sheets int    // number of sheets (default 3)
	Rows   int    // rows per sheet (default 2000)
	Weeks  int    // weeks of history, ending with EndWeek (default 6)
	Seed   uint64 // default 1
	// EndWeek is the last week ending (a Sunday; other days move to the next
	// Sunday). Zero: the Sunday on or before the simulator's now.
	EndWeek time.Time
	// Now, when set, caps generated dates: no Snapshot Date after Now's day
	// and no row created after Now (the open week is logged up to today).
	Now time.Time
	// Folder is the folder holding the sheets (default "Billing").
	Folder string
	// Nested puts the folder inside a parent folder "Field Operations" of a
	// workspace "Utility Contracts" instead of the home level.
	Nested bool
}

func (c GenConfig) withDefaults() GenConfig {
	if c.Sheets <= 0 {
		c.Sheets = 3
	}
	if c.Rows <= 0 {
		c.Rows = 2000
	}
	if c.Weeks <= 0 {
		c.Weeks = 6
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Folder == "" {
		c.Folder = "Billing"
	}
	return c
}

// cuCode is a compatible unit with its unit price in cents.
type cuCode struct {
	code  string
	cents int64
}

var cuCatalog = []cuCode{
	{"ANC-M", 18750}, {"ANC-L", 26500}, {"POLE-40-4", 148000}, {"POLE-45-3", 172500},
	{"POLE-50-2", 219000}, {"XARM-8", 21400}, {"XARM-10", 25950}, {"GUY-DN", 9825},
	{"INS-PIN", 1850}, {"INS-DE", 4275}, {"TX-25", 243000}, {"TX-50", 318000},
	{"WIRE-1/0", 385}, {"WIRE-4/0", 612}, {"FUSE-CO", 15600}, {"ARR-10", 8950},
	{"GRD-ROD", 6400}, {"SVC-DROP", 11250}, {"REMV-POLE", 54000}, {"TRIM-SPAN", 32500},
}

var workTypes = []string{"Maintenance", "New Construction", "Storm Restoration", "Pole Replacement", "Service Upgrade"}

var foremen = []smartsheet.User{
	{Name: "Jesse Ramirez", Email: "jramirez@crews.example.com"},
	{Name: "Dana Whitfield", Email: "dwhitfield@crews.example.com"},
	{Name: "Marcus Holt", Email: "mholt@crews.example.com"},
	{Name: "Priya Natarajan", Email: "pnatarajan@crews.example.com"},
	{Name: "Tom Kowalski", Email: "tkowalski@crews.example.com"},
	{Name: "Luis Ortega", Email: "lortega@crews.example.com"},
}

// weekEnding returns the Sunday on or after t (UTC date).
func weekEnding(t time.Time) time.Time {
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	return d.AddDate(0, 0, (7-int(d.Weekday()))%7)
}

// GenerateBilling builds billing sheets as wire Sheets with column ids set
// and rows carrying CreatedAt/CreatedBy (the foreman who logged them).
// It is deterministic for a config.
func GenerateBilling(cfg GenConfig) []smartsheet.Sheet {
	cfg = cfg.withDefaults()
	rng := rand.New(rand.NewPCG(cfg.Seed, 0xb111))
	end := cfg.EndWeek
	if end.IsZero() {
		end = time.Date(2024, 6, 30, 0, 0, 0, 0, time.UTC)
	}
	end = weekEnding(end)
	id := func() int64 { return int64(1<<50 + rng.Uint64N(1<<53-1<<50)) }
	titles := []string{ColWorkRequest, ColWeekEnding, ColSnapshotDate, ColCompleted, ColQuantity, ColTotalPrice, ColForeman, ColCU, ColWorkType, ColPole}
	types := []string{smartsheet.TypeTextNumber, smartsheet.TypeDate, smartsheet.TypeDate, smartsheet.TypeCheckbox, smartsheet.TypeTextNumber, smartsheet.TypeTextNumber, smartsheet.TypeTextNumber, smartsheet.TypeTextNumber, smartsheet.TypePicklist, smartsheet.TypeTextNumber}
	sheets := make([]smartsheet.Sheet, cfg.Sheets)
	for si := range sheets {
		sh := smartsheet.Sheet{Name: fmt.Sprintf("Billing Log - Crew %c", 'A'+si%26)}
		if si >= 26 {
			sh.Name += strconv.Itoa(si / 26)
		}
		cols := make([]smartsheet.Column, len(titles))
		for i := range titles {
			cols[i] = smartsheet.Column{ID: id(), Index: i, Title: titles[i], Type: types[i], Primary: i == 0}
		}
		cols[8].Options = workTypes
		sh.Columns = cols
		sh.Rows = make([]smartsheet.Row, 0, cfg.Rows)
		crew := []smartsheet.User{foremen[si%len(foremen)], foremen[(si+2)%len(foremen)]}
		wr := int64(90_000_000 + rng.IntN(9_000_000))
		linesLeft := 0
		var wt string
		var fm smartsheet.User
		var pole int
		for ri := 0; ri < cfg.Rows; ri++ {
			week := ri * cfg.Weeks / cfg.Rows // rows spread evenly, oldest first
			weekEnd := end.AddDate(0, 0, -7*(cfg.Weeks-1-week))
			if linesLeft == 0 {
				wr += int64(1 + rng.IntN(4000))
				linesLeft = 1 + rng.IntN(6)
				wt = workTypes[rng.IntN(len(workTypes))]
				fm = crew[rng.IntN(len(crew))]
				pole = 100000 + rng.IntN(900000)
			}
			linesLeft--
			snap := weekEnd.AddDate(0, 0, -rng.IntN(7))
			if today := cfg.Now.UTC().Truncate(24 * time.Hour); !cfg.Now.IsZero() && snap.After(today) {
				snap = today
			}
			cu := cuCatalog[rng.IntN(len(cuCatalog))]
			qty := int64(1 + rng.IntN(20))
			total := cu.cents * qty
			created := snap.Add(time.Duration(7+rng.IntN(10))*time.Hour + time.Duration(rng.IntN(3600))*time.Second)
			if !cfg.Now.IsZero() && created.After(cfg.Now) {
				created = cfg.Now.Add(-time.Duration(1+rng.IntN(3600)) * time.Second)
			}
			by := fm
			cells := []smartsheet.Cell{
				{ColumnID: cols[0].ID, Value: smartsheet.IntValue(wr)},
				{ColumnID: cols[1].ID, Value: smartsheet.StringValue(weekEnd.Format(time.DateOnly))},
				{ColumnID: cols[2].ID, Value: smartsheet.StringValue(snap.Format(time.DateOnly))},
				{ColumnID: cols[3].ID, Value: smartsheet.BoolValue(rng.IntN(100) < 85)},
				{ColumnID: cols[4].ID, Value: smartsheet.IntValue(qty)},
				{ColumnID: cols[5].ID, Value: smartsheet.NumberValue(fmt.Sprintf("%d.%02d", total/100, total%100))},
				{ColumnID: cols[6].ID, Value: smartsheet.StringValue(fm.Name)},
				{ColumnID: cols[7].ID, Value: smartsheet.StringValue(cu.code)},
				{ColumnID: cols[8].ID, Value: smartsheet.StringValue(wt)},
				{ColumnID: cols[9].ID, Value: smartsheet.StringValue("P-" + strconv.Itoa(pole))},
			}
			sh.Rows = append(sh.Rows, smartsheet.Row{CreatedAt: &created, CreatedBy: &by, Cells: cells})
		}
		sheets[si] = sh
	}
	return sheets
}

// Generated says where Populate put the billing sheets.
type Generated struct {
	WorkspaceID int64   `json:"workspaceId,omitempty"`
	FolderID    int64   `json:"folderId"`
	SheetIDs    []int64 `json:"sheetIds"`
}

// Populate generates billing sheets (GenerateBilling) into a folder of the
// simulator. With EndWeek zero, the weeks end on the Sunday on or before the
// simulator's now.
func (s *Server) Populate(cfg GenConfig) (Generated, error) {
	cfg = cfg.withDefaults()
	if cfg.Now.IsZero() {
		cfg.Now = s.Now()
	}
	if cfg.EndWeek.IsZero() {
		now := s.Now()
		cfg.EndWeek = weekEnding(now.AddDate(0, 0, -int(now.Weekday())))
	}
	var g Generated
	var parent int64
	var err error
	if cfg.Nested {
		g.WorkspaceID = s.CreateWorkspace("Utility Contracts")
		if parent, err = s.CreateFolder("Field Operations", 0, g.WorkspaceID); err != nil {
			return g, err
		}
	}
	if g.FolderID, err = s.CreateFolder(cfg.Folder, parent, 0); err != nil {
		return g, err
	}
	for _, sh := range GenerateBilling(cfg) {
		out, err := s.CreateSheet(sh, g.FolderID, 0, Edit{User: DefaultUser, At: sh.Rows[0].CreatedAt.Add(-time.Hour)})
		if err != nil {
			return g, fmt.Errorf("populate %q: %w", sh.Name, err)
		}
		g.SheetIDs = append(g.SheetIDs, out.ID)
	}
	return g, nil
}
