package audit

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/shopspring/decimal"
)

// Canonical column keys. Each is also the column's usual title.
const (
	ColWorkRequest  = "Work Request #"
	ColWeekEnding   = "Weekly Reference Logged Date"
	ColSnapshotDate = "Snapshot Date"
	ColCompleted    = "Units Completed?"
	ColQuantity     = "Quantity"
	ColPrice        = "Units Total Price"
	ColForeman      = "Foreman"
	ColCU           = "CU"
	ColWorkType     = "Work Type"
	ColPole         = "Pole #"
)

// ColumnSynonyms maps a canonical key to the other titles accepted for it.
// The key itself is always accepted and preferred over its synonyms; earlier
// synonyms are preferred over later ones.
type ColumnSynonyms map[string][]string

// Config holds the audit rules. Build it with [DefaultConfig] and override
// fields; the zero Config is not usable.
type Config struct {
	// Columns lists accepted titles per canonical key.
	Columns ColumnSynonyms
	// Tracked lists the canonical keys whose changes are reported by default.
	Tracked []string
	// TrackColumns lists more column titles to track (the TRACK_COLUMNS
	// setting). A title matching a canonical key or synonym tracks that key;
	// any other title is tracked under its own (trimmed) title.
	TrackColumns []string
	// Location is the audit timezone: a week-ending day ends at midnight here.
	Location *time.Location
	// Grace is added after the end of the week-ending day before an edit
	// counts as unauthorized.
	Grace time.Duration
	// HighRisk and MediumRisk are exclusive lower bounds of |impact|.
	HighRisk, MediumRisk decimal.Decimal
}

// DefaultConfig returns the rules of the issue: the standard titles and
// synonyms; tracked price, quantity, completion, work request and CU; UTC;
// no grace; HIGH above 1000 and MEDIUM above 100.
func DefaultConfig() Config {
	return Config{
		Columns: ColumnSynonyms{
			ColWorkRequest:  nil,
			ColWeekEnding:   {"Week Ending", "Week Ending Date"},
			ColSnapshotDate: nil,
			ColCompleted:    {"Units Completed"},
			ColQuantity:     {"Qty", "# Units"},
			ColPrice:        {"Redlined Total Price", "Total Price"},
			ColForeman:      nil,
			ColCU:           {"Billable Unit Code"},
			ColWorkType:     nil,
			ColPole:         nil,
		},
		Tracked:    []string{ColPrice, ColQuantity, ColCompleted, ColWorkRequest, ColCU},
		Location:   time.UTC,
		HighRisk:   decimal.NewFromInt(1000),
		MediumRisk: decimal.NewFromInt(100),
	}
}

// Validate reports a configuration the audit cannot run with.
func (c Config) Validate() error {
	var errs []error
	if c.Location == nil {
		errs = append(errs, errors.New("audit config: Location is nil"))
	}
	if c.Grace < 0 {
		errs = append(errs, fmt.Errorf("audit config: Grace %v is negative", c.Grace))
	}
	if c.MediumRisk.IsNegative() || c.HighRisk.LessThan(c.MediumRisk) {
		errs = append(errs, fmt.Errorf("audit config: want 0 <= MediumRisk (%s) <= HighRisk (%s)", c.MediumRisk, c.HighRisk))
	}
	return errors.Join(errs...)
}

func (c Config) location() *time.Location {
	if c.Location == nil {
		return time.UTC
	}
	return c.Location
}

// NormalizeTitle is the form titles are matched in: lower case, without any
// white space. "Units  Total price" and "unitstotalprice" match.
func NormalizeTitle(title string) string {
	var b strings.Builder
	b.Grow(len(title))
	for _, r := range title {
		if unicode.IsSpace(r) {
			continue
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// ColumnInfo is a sheet column as the audit needs it.
type ColumnInfo struct {
	ID    int64  `json:"id"`
	Title string `json:"title"`
	Type  string `json:"type,omitempty"` // Smartsheet column type: TEXT_NUMBER, DATE, CHECKBOX…
}

// Mapping is the result of matching one sheet's columns.
type Mapping struct {
	SheetID   int64
	SheetName string
	// ByKey maps a key (canonical, or an extra tracked title) to its column.
	ByKey map[string]ColumnInfo
	// ByID maps a column id back to its key, to build [RowSnapshot.Values].
	ByID map[int64]string
	// Tracked lists the keys of tracked columns present on the sheet, in
	// configuration order.
	Tracked []string
}

// Title returns the displayed title of key's column, or key when the sheet
// lacks it.
func (m Mapping) Title(key string) string {
	if c, ok := m.ByKey[key]; ok {
		return c.Title
	}
	return key
}

// NeededColumnIDs lists, in ascending order, the ids of the mapped columns:
// the only ones a scan needs to fetch.
func (m Mapping) NeededColumnIDs() []int64 {
	ids := make([]int64, 0, len(m.ByKey))
	for _, c := range m.ByKey {
		ids = append(ids, c.ID)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// titleIndex maps normalised titles to a key, with a preference rank (0 for
// the canonical title).
type titleMatch struct {
	key  string
	rank int
}

func (c Config) titleIndex() map[string]titleMatch {
	idx := make(map[string]titleMatch)
	add := func(title, key string, rank int) {
		n := NormalizeTitle(title)
		if n == "" {
			return
		}
		if old, ok := idx[n]; ok && old.rank <= rank {
			return
		}
		idx[n] = titleMatch{key: key, rank: rank}
	}
	keys := make([]string, 0, len(c.Columns))
	for k := range c.Columns {
		keys = append(keys, k)
	}
	slices.Sort(keys) // deterministic when a title is configured twice
	for _, k := range keys {
		add(k, k, 0)
		for i, s := range c.Columns[k] {
			add(s, k, i+1)
		}
	}
	return idx
}

// trackedKeys resolves Tracked and TrackColumns to keys, without duplicates.
func (c Config) trackedKeys(idx map[string]titleMatch) []string {
	var keys []string
	for _, k := range c.Tracked {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	for _, t := range c.TrackColumns {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		k := t
		if m, ok := idx[NormalizeTitle(t)]; ok {
			k = m.key
		}
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// MapColumns matches a sheet's columns to the configured keys, ignoring case
// and white space. When two columns match one key, the canonical title wins,
// then the earlier synonym, then the leftmost column. It returns a
// [FindingMissingColumn] for each tracked column the sheet lacks, and a
// [FindingNoWeekEnding] when it has neither the week-ending nor the Snapshot
// Date column, so a sheet is never skipped silently.
func (c Config) MapColumns(sheetID int64, sheetName string, cols []ColumnInfo) (Mapping, []Finding) {
	idx := c.titleIndex()
	tracked := c.trackedKeys(idx)
	m := Mapping{
		SheetID:   sheetID,
		SheetName: sheetName,
		ByKey:     make(map[string]ColumnInfo),
		ByID:      make(map[int64]string),
	}
	best := make(map[string]int)
	extra := make(map[string]string) // normalised extra title → key
	for _, k := range tracked {
		if _, ok := c.Columns[k]; !ok {
			extra[NormalizeTitle(k)] = k
		}
	}
	for _, col := range cols {
		n := NormalizeTitle(col.Title)
		key, rank := "", 0
		if tm, ok := idx[n]; ok {
			key, rank = tm.key, tm.rank
		} else if k, ok := extra[n]; ok {
			key = k
		} else {
			continue
		}
		if r, ok := best[key]; ok && r <= rank {
			continue
		}
		if old, ok := m.ByKey[key]; ok {
			delete(m.ByID, old.ID)
		}
		best[key] = rank
		m.ByKey[key] = col
		m.ByID[col.ID] = key
	}
	var findings []Finding
	for _, k := range tracked {
		if _, ok := m.ByKey[k]; ok {
			m.Tracked = append(m.Tracked, k)
			continue
		}
		findings = append(findings, Finding{
			Kind: FindingMissingColumn, SheetID: sheetID, SheetName: sheetName, Column: k,
			Message: fmt.Sprintf("tracked column %q (or a synonym) is missing: its changes cannot be detected", k),
		})
	}
	_, hasWeek := m.ByKey[ColWeekEnding]
	_, hasSnap := m.ByKey[ColSnapshotDate]
	if !hasWeek && !hasSnap {
		findings = append(findings, Finding{
			Kind: FindingNoWeekEnding, SheetID: sheetID, SheetName: sheetName, Column: ColWeekEnding,
			Message: fmt.Sprintf("neither %q nor %q is present: no row's week ending can be known, so no change can be judged authorized", ColWeekEnding, ColSnapshotDate),
		})
	}
	return m, findings
}
