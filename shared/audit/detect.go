package audit

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// RowSnapshot is a row as read now. Values holds raw cell text by key (see
// [Mapping.ByID]); "" is a blank cell. Number cells carry their exact text,
// checkbox cells "true" or "false", date cells "YYYY-MM-DD".
type RowSnapshot struct {
	SheetID        int64     `json:"sheetId"`
	RowID          int64     `json:"rowId"`
	RowNumber      int       `json:"rowNumber"`
	Permalink      string    `json:"permalink,omitempty"`
	ModifiedAt     time.Time `json:"modifiedAt,omitzero"`
	ModifiedBy     string    `json:"modifiedBy,omitempty"` // email
	ModifiedByName string    `json:"modifiedByName,omitempty"`
	// CreatedAt is when the row was created and CreatedBy (email) who
	// created it: a row whose ModifiedAt is its CreatedAt, modified by its
	// creator, was never saved by anyone else since (see [WriterInfo]).
	CreatedAt time.Time         `json:"createdAt,omitzero"`
	CreatedBy string            `json:"createdBy,omitempty"`
	Values    map[string]string `json:"values"`
	// Untracked is a print of the row's other cells — every column but the
	// tracked ones and the week's — when the read carried them all; ""
	// when it did not (only the mapped columns were read). It lets writer
	// info be proven: a row whose other cells are as they were has had no
	// save but its tracked change.
	Untracked string `json:"untracked,omitempty"`
	// UntrackedSame says Untracked is known and equal to the baseline's:
	// set by the comparison (see [WriterInfo]).
	UntrackedSame bool `json:"-"`
}

// Watched reports whether a column's cells are compared by the detector
// (a tracked column, or the week's): the columns outside
// [RowSnapshot.Untracked].
func (m Mapping) Watched(columnID int64) bool {
	key, ok := m.ByID[columnID]
	if !ok {
		return false
	}
	return key == ColWeekEnding || key == ColSnapshotDate || slices.Contains(m.Tracked, key)
}

// Baseline is the stored state of a row that changes are measured against.
type Baseline struct {
	SheetID    int64             `json:"sheetId"`
	RowID      int64             `json:"rowId"`
	RowNumber  int               `json:"rowNumber"`
	Permalink  string            `json:"permalink,omitempty"`
	Values     map[string]string `json:"values"`
	WeekEnding time.Time         `json:"weekEnding,omitzero"` // zero if unknown
	SeenAt     time.Time         `json:"seenAt"`
	ModifiedAt time.Time         `json:"modifiedAt,omitzero"`
	// Generation counts the changes recorded against this row: 0 for the
	// first baseline, one more each time a comparison found a change and the
	// baseline moved on. It makes a change that happens again (A→B after
	// B→A) a new occurrence with its own Change ID.
	Generation uint64 `json:"generation,omitempty"`
	// Untracked is the row's [RowSnapshot.Untracked] when seen ("":
	// unknown).
	Untracked string `json:"untracked,omitempty"`
	// Opened holds, per tracked column key, the cell's changes not yet
	// undone, oldest first, each with the value before it: a later change
	// that brings the cell back to one of those values reverses that change
	// and every one after it (650 → 700 → 5000 → 650 undoes both), one that
	// brings it back to a later one only the later ones. It travels with the
	// baseline, so finding a reversal costs no lookup.
	Opened map[string][]OpenChange `json:"opened,omitempty"`
	// Open is what baselines stored before Opened kept only: the cell's
	// first change not yet undone. It is read as a one-change Opened.
	Open map[string]OpenChange `json:"open,omitempty"`
}

// maxOpened bounds a cell's open changes: a cell edited back and forth
// without ever returning keeps its latest ones.
const maxOpened = 16

// opened is the cell's open changes, oldest first, from either field.
func (b *Baseline) opened(key string) []OpenChange {
	if oc, ok := b.Opened[key]; ok {
		return oc
	}
	if oc, ok := b.Open[key]; ok {
		return []OpenChange{oc}
	}
	return nil
}

// undone is the index of the first open change a cell back at value undoes
// (-1: none).
func undone(open []OpenChange, value string) int {
	return slices.IndexFunc(open, func(oc OpenChange) bool { return oc.Before == value })
}

// OpenChange is a change a cell may still return from: its id and the cell's
// normalised value before it.
type OpenChange struct {
	ChangeID string `json:"changeId"`
	Before   string `json:"before"`
}

// NewBaseline records s as a baseline seen at seenAt, deriving its week
// ending with date-times read in UTC. Prefer [Detector.NewBaseline], which
// uses the configured timezone.
func NewBaseline(s RowSnapshot, seenAt time.Time) Baseline {
	return newBaseline(s, seenAt, time.UTC)
}

func newBaseline(s RowSnapshot, seenAt time.Time, loc *time.Location) Baseline {
	we, _ := WeekEnding(s.Values[ColWeekEnding], s.Values[ColSnapshotDate], loc)
	return Baseline{
		SheetID:    s.SheetID,
		RowID:      s.RowID,
		RowNumber:  s.RowNumber,
		Permalink:  s.Permalink,
		Values:     maps.Clone(s.Values),
		WeekEnding: we,
		SeenAt:     seenAt.UTC(),
		ModifiedAt: s.ModifiedAt.UTC(),
		Untracked:  s.Untracked,
	}
}

// WeekEnding derives a row's week ending: the week-ending cell when it holds
// a date, else the Sunday on or after the Snapshot Date. ok is false when
// neither gives a date.
func WeekEnding(weekEndingRaw, snapshotRaw string, loc *time.Location) (t time.Time, ok bool) {
	if t, ok, err := ParseDate(weekEndingRaw, loc); ok && err == nil {
		return t, true
	}
	if t, ok, err := ParseDate(snapshotRaw, loc); ok && err == nil {
		return WeekEndingOf(t), true
	}
	return time.Time{}, false
}

// ScanWindow is the time of the previous scan (zero if none) and of this one:
// a change first seen now happened in (Previous, Current].
type ScanWindow struct {
	Previous time.Time `json:"previous,omitzero"`
	Current  time.Time `json:"current"`
}

// valueKind says how a column's values are compared.
type valueKind uint8

const (
	kindText valueKind = iota
	kindMoney
	kindQuantity
	kindDate
	kindBool
)

type trackedCol struct {
	key, title string
	id         int64
	kind       valueKind
}

func kindOf(key, colType string) valueKind {
	switch key {
	case ColPrice:
		return kindMoney
	case ColQuantity:
		return kindQuantity
	case ColWeekEnding, ColSnapshotDate:
		return kindDate
	case ColCompleted:
		return kindBool
	}
	switch strings.ToUpper(colType) {
	case "DATE", "DATETIME", "ABSTRACT_DATETIME":
		return kindDate
	case "CHECKBOX":
		return kindBool
	}
	return kindText
}

// Detector compares the rows of one sheet with their baselines. Build one
// per sheet and run with [NewDetector]; it holds no mutable state, so
// goroutines may share it.
type Detector struct {
	cfg     Config
	m       Mapping
	runID   string
	loc     *time.Location
	tracked []trackedCol
}

// NewDetector builds the detector of one sheet (m names it) for a run.
func NewDetector(cfg Config, m Mapping, runID string) *Detector {
	d := &Detector{cfg: cfg, m: m, runID: runID, loc: cfg.location()}
	for _, k := range m.Tracked {
		col := m.ByKey[k]
		d.tracked = append(d.tracked, trackedCol{key: k, title: col.Title, id: col.ID, kind: kindOf(k, col.Type)})
	}
	return d
}

// NewBaseline records s as a baseline seen at seenAt.
func (d *Detector) NewBaseline(s RowSnapshot, seenAt time.Time) Baseline {
	return newBaseline(s, seenAt, d.loc)
}

// NextBaseline is the baseline that replaces prev (nil for a new row) once
// cur has been compared with it: changed says the comparison found a change,
// which starts the row's next generation; a baseline refreshed for another
// reason (the row moved) keeps its generation.
//
// The changes are the comparison's (none: the row did not change). Each value
// change opens its cell unless one is open already (the first change is the
// one a return undoes), and a change that reverses the open one closes it.
func (d *Detector) NextBaseline(prev *Baseline, cur RowSnapshot, changes []Change, seenAt time.Time) Baseline {
	b := newBaseline(cur, seenAt, d.loc)
	if prev == nil {
		return b
	}
	b.Generation = prev.Generation
	if len(changes) > 0 {
		b.Generation++
	}
	open := map[string][]OpenChange{}
	for key := range prev.Opened {
		open[key] = prev.opened(key)
	}
	for key := range prev.Open {
		open[key] = prev.opened(key)
	}
	for _, c := range changes {
		if c.Kind != KindValueChanged {
			continue
		}
		kind := d.kindOfKey(c.ColumnKey)
		stack := open[c.ColumnKey]
		if k := undone(stack, normalize(kind, c.NewValue)); k >= 0 {
			stack = stack[:k:k] // back to before the k-th: it and the later ones are undone
		} else {
			stack = append(stack[:len(stack):len(stack)], OpenChange{ChangeID: c.ChangeID, Before: normalize(kind, c.OldValue)})
			if len(stack) > maxOpened {
				stack = stack[len(stack)-maxOpened:]
			}
		}
		open[c.ColumnKey] = stack
	}
	for key, stack := range open {
		if len(stack) == 0 {
			delete(open, key)
		}
	}
	if len(open) > 0 {
		b.Opened = open
	}
	return b
}

// kindOfKey is the comparison kind of a tracked column.
func (d *Detector) kindOfKey(key string) valueKind {
	for _, t := range d.tracked {
		if t.key == key {
			return t.kind
		}
	}
	return kindText
}

// Compare compares a row with its baseline. prev nil means a new row, cur
// nil a deleted one.
//
//   - New row: on a sheet's first scan, nothing (the caller stores its
//     baseline); otherwise ROW_ADDED_LATE when it is billable (price or
//     quantity filled) and its week had ended at w.Current. Impact +price.
//   - Deleted billable row: ROW_DELETED, impact −price.
//   - Week ending moved to another week: one WEEK_MOVED (not a VALUE_CHANGED
//     on the week-ending or Snapshot Date column), impact +price: the row is
//     billed again in the new week.
//   - Each tracked cell whose normalised value differs: VALUE_CHANGED. Money
//     and quantities compare as decimals ("1200" = "1200.00"), checkboxes as
//     booleans (blank = false), dates as dates, text trimmed. A price change
//     is valued at face value (new − old, blank counting as nothing); a
//     quantity change at the baseline unit price × Δqty (Estimated), or not
//     at all when the price changed too (the price change carries it).
//
// Values that do not parse give a Finding keeping the raw text, and the
// change is Unvalued rather than valued at zero. Findings about a row's data
// are reported when the row is first seen and when the cell changes.
//
// Changes come with RunID, DetectedAt and an unknown Attribution holding the
// window in which they happened; Status and Risk are set by Classify after
// attribution. An unchanged row costs no allocation.
func (d *Detector) Compare(prev *Baseline, cur *RowSnapshot, firstScanOfSheet bool, w ScanWindow) ([]Change, []Finding) {
	switch {
	case prev == nil && cur == nil:
		return nil, nil
	case prev == nil:
		return d.newRow(cur, firstScanOfSheet, w)
	case cur == nil:
		return d.deletedRow(prev, w), nil
	}
	pv, cv := prev.Values, cur.Values
	same := pv[ColWeekEnding] == cv[ColWeekEnding] && pv[ColSnapshotDate] == cv[ColSnapshotDate]
	for i := 0; same && i < len(d.tracked); i++ {
		k := d.tracked[i].key
		same = pv[k] == cv[k]
	}
	if same {
		return nil, nil
	}
	return d.changedRow(prev, cur, w)
}

func (d *Detector) base(rowID int64, rowNumber int, permalink string, vals map[string]string, w ScanWindow) Change {
	return Change{
		RunID:       d.runID,
		SheetID:     d.m.SheetID,
		SheetName:   d.m.SheetName,
		RowID:       rowID,
		RowNumber:   rowNumber,
		Permalink:   permalink,
		WorkRequest: strings.TrimSpace(vals[ColWorkRequest]),
		Attribution: Attribution{Source: SourceUnknown, WindowStart: w.Previous.UTC(), WindowEnd: w.Current.UTC()},
		DetectedAt:  w.Current.UTC(),
	}
}

// narrow tightens a change's window with what the row says: the change came
// after the baseline's modification and no later than the row's last one.
func narrow(c *Change, prevModified, curModified time.Time) {
	a := &c.Attribution
	if prevModified.After(a.WindowStart) && (a.WindowEnd.IsZero() || prevModified.Before(a.WindowEnd)) {
		a.WindowStart = prevModified.UTC()
	}
	if !curModified.IsZero() && curModified.After(a.WindowStart) && (a.WindowEnd.IsZero() || curModified.Before(a.WindowEnd)) {
		a.WindowEnd = curModified.UTC()
	}
}

// finish sets the change's id from what changed and the generation of the
// baseline it was measured against.
func (d *Detector) finish(c *Change, generation uint64, columnKey, oldNorm, newNorm string) {
	c.Generation = generation
	c.ChangeID = ChangeID(c.SheetID, c.RowID, generation, columnKey, c.Kind, oldNorm, newNorm)
}

func billable(vals map[string]string) bool {
	return strings.TrimSpace(vals[ColPrice]) != "" || strings.TrimSpace(vals[ColQuantity]) != ""
}

// priceImpact values a whole row at sign × its price.
func (d *Detector) priceImpact(c *Change, raw string, negate bool) {
	p, ok, err := ParseMoney(raw)
	switch {
	case err != nil:
		c.Unvalued = true
		c.Note = fmt.Sprintf("%s %q does not parse: impact unknown", d.m.Title(ColPrice), raw)
	case !ok:
		c.Unvalued = true
		c.Note = fmt.Sprintf("%s is blank: impact unknown", d.m.Title(ColPrice))
	case negate:
		c.Impact = p.Neg()
	default:
		c.Impact = p
	}
}

func (d *Detector) newRow(cur *RowSnapshot, first bool, w ScanWindow) ([]Change, []Finding) {
	findings := d.cellFindings(cur, nil, w)
	week, ok := WeekEnding(cur.Values[ColWeekEnding], cur.Values[ColSnapshotDate], d.loc)
	if !ok {
		findings = append(findings, d.noWeekFinding(cur))
	}
	if first || !ok || !billable(cur.Values) || w.Current.Before(d.cfg.Cutoff(week)) {
		return nil, findings
	}
	// A row Smartsheet says was created before its week closed was logged
	// on time, however long after that the scan first saw it (a crew's
	// Sunday-evening entries after the last Sunday scan). Smartsheet sets
	// createdAt; no user can back-date it.
	if !cur.CreatedAt.IsZero() && cur.CreatedAt.Before(d.cfg.Cutoff(week)) {
		return nil, findings
	}
	c := d.base(cur.RowID, cur.RowNumber, cur.Permalink, cur.Values, w)
	c.Kind = KindRowAddedLate
	c.WeekEnding = week
	c.NewValue = cur.Values[ColPrice]
	d.priceImpact(&c, cur.Values[ColPrice], false)
	narrow(&c, time.Time{}, cur.ModifiedAt)
	d.finish(&c, 0, "", "", normalize(kindMoney, c.NewValue))
	return []Change{c}, findings
}

func (d *Detector) deletedRow(prev *Baseline, w ScanWindow) []Change {
	if !billable(prev.Values) {
		return nil
	}
	c := d.base(prev.RowID, prev.RowNumber, prev.Permalink, prev.Values, w)
	c.Kind = KindRowDeleted
	c.WeekEnding = d.baselineWeek(prev)
	c.OldValue = prev.Values[ColPrice]
	d.priceImpact(&c, c.OldValue, true)
	narrow(&c, prev.ModifiedAt, time.Time{})
	d.finish(&c, prev.Generation, "", normalize(kindMoney, c.OldValue), "")
	return []Change{c}
}

func (d *Detector) baselineWeek(prev *Baseline) time.Time {
	if !prev.WeekEnding.IsZero() {
		return prev.WeekEnding
	}
	we, _ := WeekEnding(prev.Values[ColWeekEnding], prev.Values[ColSnapshotDate], d.loc)
	return we
}

func (d *Detector) changedRow(prev *Baseline, cur *RowSnapshot, w ScanWindow) ([]Change, []Finding) {
	pv, cv := prev.Values, cur.Values
	var changes []Change
	var findings []Finding
	var changedKeys []string
	for _, k := range []string{ColWeekEnding, ColSnapshotDate, ColPrice, ColQuantity} {
		if _, mapped := d.m.ByKey[k]; mapped && pv[k] != cv[k] {
			changedKeys = append(changedKeys, k)
		}
	}
	findings = d.cellFindings(cur, changedKeys, w)

	oldWeek := d.baselineWeek(prev)
	newWeek := oldWeek
	weekRaw := pv[ColWeekEnding] != cv[ColWeekEnding] || pv[ColSnapshotDate] != cv[ColSnapshotDate]
	if weekRaw {
		var ok bool
		newWeek, ok = WeekEnding(cv[ColWeekEnding], cv[ColSnapshotDate], d.loc)
		if !ok {
			findings = append(findings, d.noWeekFinding(cur))
		}
	}
	moved := !oldWeek.IsZero() && !newWeek.IsZero() && !oldWeek.Equal(newWeek)
	if moved {
		key := ColSnapshotDate
		if strings.TrimSpace(cv[ColWeekEnding]) != "" && pv[ColWeekEnding] != cv[ColWeekEnding] {
			key = ColWeekEnding
		}
		c := d.base(cur.RowID, cur.RowNumber, cur.Permalink, pv, w)
		c.Kind = KindWeekMoved
		c.WeekEnding, c.MovedTo = oldWeek, newWeek
		c.Column, c.ColumnKey, c.ColumnID = d.m.Title(key), key, d.m.ByKey[key].ID
		// The cell's own values, each with the week it bills: what a reader
		// of the row sees, and why it moved.
		c.OldValue = fmt.Sprintf("%s (week ending %s)", dashIfBlank(pv[key]), FormatDate(oldWeek))
		c.NewValue = fmt.Sprintf("%s (week ending %s)", dashIfBlank(cv[key]), FormatDate(newWeek))
		price := pv[ColPrice]
		if strings.TrimSpace(price) == "" {
			price = cv[ColPrice]
		}
		d.priceImpact(&c, price, false)
		note := fmt.Sprintf("billed in the week ending %s, now in the week ending %s", FormatDate(oldWeek), FormatDate(newWeek))
		if c.Note != "" {
			note += "; " + c.Note
		}
		c.Note = note + "; the row is billed again in the new week"
		narrow(&c, prev.ModifiedAt, cur.ModifiedAt)
		// The id is the move's, week to week, whatever the cell's text.
		d.finish(&c, prev.Generation, key, FormatDate(oldWeek), FormatDate(newWeek))
		changes = append(changes, c)
	}

	priceChanged := normalize(kindMoney, pv[ColPrice]) != normalize(kindMoney, cv[ColPrice])
	for _, t := range d.tracked {
		o, n := pv[t.key], cv[t.key]
		if o == n {
			continue
		}
		if moved && (t.key == ColWeekEnding || t.key == ColSnapshotDate) {
			continue
		}
		on, nn := normalize(t.kind, o), normalize(t.kind, n)
		if on == nn {
			continue // a same-value save
		}
		c := d.base(cur.RowID, cur.RowNumber, cur.Permalink, pv, w)
		c.Kind = KindValueChanged
		c.WeekEnding = oldWeek
		c.Column, c.ColumnKey, c.ColumnID = t.title, t.key, t.id
		c.OldValue, c.NewValue = o, n
		switch t.kind {
		case kindMoney:
			d.valuePrice(&c, o, n)
		case kindQuantity:
			d.valueQuantity(&c, pv, o, n, priceChanged)
		}
		narrow(&c, prev.ModifiedAt, cur.ModifiedAt)
		d.finish(&c, prev.Generation, t.key, on, nn)
		if stack := prev.opened(t.key); len(stack) > 0 {
			if k := undone(stack, nn); k >= 0 {
				ids := make([]string, 0, len(stack)-k)
				for _, oc := range stack[k:] {
					ids = append(ids, oc.ChangeID)
				}
				c.Reverses = JoinReversed(ids)
			}
		}
		changes = append(changes, c)
	}
	return changes, findings
}

func (d *Detector) valuePrice(c *Change, o, n string) {
	po, okO, errO := ParseMoney(o)
	pn, okN, errN := ParseMoney(n)
	if errO != nil || errN != nil {
		c.Unvalued = true
		c.Note = "a value does not parse as money: impact unknown"
		return
	}
	if okO && okN {
		delta := pn.Sub(po)
		c.Delta = &delta
	}
	c.Impact = pn.Sub(po) // a blank price bills nothing
	if !okO || !okN {
		c.Note = "a blank price counts as no amount"
	}
}

func (d *Detector) valueQuantity(c *Change, pv map[string]string, o, n string, priceChanged bool) {
	qo, okO, errO := ParseQuantity(o)
	qn, okN, errN := ParseQuantity(n)
	if errO != nil || errN != nil {
		c.Unvalued = true
		c.Note = "a value does not parse as a quantity: impact unknown"
		return
	}
	dq := qn.Sub(qo)
	if okO && okN {
		c.Delta = &dq
	}
	if priceChanged {
		c.Note = fmt.Sprintf("money valued on the %s change of the same row", d.m.Title(ColPrice))
		c.ValuedElsewhere = true
		return
	}
	price, okP, errP := ParseMoney(pv[ColPrice])
	if !okO || qo.IsZero() || !okP || errP != nil {
		c.Unvalued = true
		c.Note = "no baseline unit price (price ÷ quantity): impact unknown"
		return
	}
	c.Impact = price.Div(qo).Mul(dq).Round(2)
	c.Estimated = true
	c.Note = fmt.Sprintf("estimated at the baseline unit price %s × Δ%s", price.Div(qo).Round(4), dq)
}

// normalize gives the comparable form of a raw value: decimals by value,
// dates as YYYY-MM-DD, checkboxes as true/false, text trimmed. A value that
// does not parse is kept as trimmed text.
func normalize(k valueKind, raw string) string {
	s := strings.TrimSpace(raw)
	if s == "" {
		if k == kindBool {
			return "false"
		}
		return ""
	}
	switch k {
	case kindMoney:
		if v, ok, err := ParseMoney(s); ok && err == nil {
			return v.String()
		}
	case kindQuantity:
		if v, ok, err := ParseQuantity(s); ok && err == nil {
			return v.String()
		}
	case kindDate:
		if t, ok, err := ParseDate(s, time.UTC); ok && err == nil {
			return FormatDate(t)
		}
	case kindBool:
		switch strings.ToLower(s) {
		case "true", "yes", "y", "1", "checked", "x":
			return "true"
		case "false", "no", "n", "0", "unchecked":
			return "false"
		}
	}
	return s
}

func (d *Detector) noWeekFinding(s *RowSnapshot) Finding {
	return Finding{
		Kind: FindingNoWeekEnding, SheetID: d.m.SheetID, SheetName: d.m.SheetName,
		RowID: s.RowID, RowNumber: s.RowNumber, Column: d.m.Title(ColWeekEnding),
		Raw:     s.Values[ColWeekEnding],
		Message: fmt.Sprintf("row has no usable %s or %s: its changes cannot be judged against a week", d.m.Title(ColWeekEnding), d.m.Title(ColSnapshotDate)),
	}
}

// cellFindings checks the price, quantity and date cells of s (only those in
// keys, or all when keys is nil) for values that do not parse and for
// implausible dates, relative to w.Current.
func (d *Detector) cellFindings(s *RowSnapshot, keys []string, w ScanWindow) []Finding {
	if keys == nil {
		keys = []string{ColWeekEnding, ColSnapshotDate, ColPrice, ColQuantity}
	}
	var out []Finding
	add := func(kind FindingKind, key, raw, msg string) {
		out = append(out, Finding{
			Kind: kind, SheetID: d.m.SheetID, SheetName: d.m.SheetName, RowID: s.RowID,
			RowNumber: s.RowNumber, Column: d.m.Title(key), Raw: raw, Message: msg,
		})
	}
	today := civilDate(w.Current.In(d.loc))
	for _, k := range keys {
		if _, mapped := d.m.ByKey[k]; !mapped {
			continue
		}
		raw := s.Values[k]
		switch k {
		case ColPrice:
			if _, _, err := ParseMoney(raw); err != nil {
				add(FindingBadMoney, k, raw, err.Error())
			}
		case ColQuantity:
			if _, _, err := ParseQuantity(raw); err != nil {
				add(FindingBadQuantity, k, raw, err.Error())
			}
		case ColWeekEnding, ColSnapshotDate:
			t, ok, err := ParseDate(raw, d.loc)
			switch {
			case err != nil:
				add(FindingBadDate, k, raw, err.Error())
			case !ok || w.Current.IsZero():
			case t.After(today.AddDate(2, 0, 0)):
				add(FindingDateFarFuture, k, raw, fmt.Sprintf("date %s is more than 2 years after the scan (%s)", FormatDate(t), FormatDate(today)))
			case t.Before(today.AddDate(-10, 0, 0)):
				add(FindingDateFarPast, k, raw, fmt.Sprintf("date %s is more than 10 years before the scan (%s)", FormatDate(t), FormatDate(today)))
			case k == ColSnapshotDate && t.After(today):
				add(FindingSnapshotFuture, k, raw, fmt.Sprintf("Snapshot Date %s is after the scan date %s", FormatDate(t), FormatDate(today)))
			}
		}
	}
	return out
}

// dashIfBlank is s, or "(blank)" for an empty cell.
func dashIfBlank(s string) string {
	if strings.TrimSpace(s) == "" {
		return "(blank)"
	}
	return s
}
