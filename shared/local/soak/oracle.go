package soak

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
	"github.com/shopspring/decimal"
)

// Expected is one change the audit must record: what identifies it on the
// audit sheet, and who may be named as its author.
type Expected struct {
	key    string
	users  []string // emails; empty: any (the product may not know)
	impact string   // the money impact, two decimals; "" when unvalued
}

func money(s string) decimal.Decimal {
	d, err := decimal.NewFromString(strings.TrimSpace(s))
	if err != nil {
		return decimal.Zero // blank: no amount (the generator writes no other text)
	}
	return d
}

func fixed(d decimal.Decimal) string { return d.StringFixed(2) }

// impactOf is a value change's money impact by the rules of
// audit.Detector.Compare: a price change at face value; a quantity change
// at the baseline unit price × Δqty, or nothing when the price changed too
// (that change carries the money), or unvalued without a unit price; any
// other column nothing.
func impactOf(title string, pv, cv map[string]string) string {
	switch title {
	case smartsim.ColTotalPrice:
		return fixed(money(cv[title]).Sub(money(pv[title])))
	case smartsim.ColQuantity:
		if norm(smartsim.ColTotalPrice, pv[smartsim.ColTotalPrice]) != norm(smartsim.ColTotalPrice, cv[smartsim.ColTotalPrice]) {
			return fixed(decimal.Zero)
		}
		qo, qn := money(pv[title]), money(cv[title])
		if qo.IsZero() || strings.TrimSpace(pv[smartsim.ColTotalPrice]) == "" {
			return ""
		}
		return fixed(money(pv[smartsim.ColTotalPrice]).Div(qo).Mul(qn.Sub(qo)).Round(2))
	}
	return fixed(decimal.Zero)
}

// changeKey is how a change is matched on the audit sheet: sheet, row, kind,
// column and the normalised old and new values.
func changeKey(sheet, row int64, kind, column, oldV, newV string) string {
	return fmt.Sprintf("%d|%d|%s|%s|%s|%s", sheet, row, kind, column, norm(column, oldV), norm(column, newV))
}

// norm compares values as the audit does: money and quantities by value,
// checkboxes as booleans, text trimmed.
func norm(column, v string) string {
	v = strings.TrimSpace(v)
	switch column {
	case smartsim.ColQuantity, smartsim.ColTotalPrice, "(row)":
		if d, err := decimal.NewFromString(strings.NewReplacer("$", "", ",", "").Replace(v)); err == nil {
			return d.String()
		}
	case smartsim.ColCompleted:
		if v == "" {
			return "false"
		}
		return strings.ToLower(v)
	}
	return v
}

func parseDate(s string) (time.Time, bool) {
	t, err := time.Parse(time.DateOnly, strings.TrimSpace(s))
	return t, err == nil
}

// weekOf is a row's week: its week-ending date, else the Sunday on or after
// its Snapshot Date.
func weekOf(vals map[string]string) (time.Time, bool) {
	if t, ok := parseDate(vals[smartsim.ColWeekEnding]); ok {
		return t, true
	}
	if t, ok := parseDate(vals[smartsim.ColSnapshotDate]); ok {
		return t.AddDate(0, 0, (7-int(t.Weekday()))%7), true
	}
	return time.Time{}, false
}

func billable(vals map[string]string) bool {
	return strings.TrimSpace(vals[smartsim.ColTotalPrice]) != "" || strings.TrimSpace(vals[smartsim.ColQuantity]) != ""
}

func orBlank(s string) string {
	if strings.TrimSpace(s) == "" {
		return "(blank)"
	}
	return s
}

// expect computes the changes between what the last completed run saw
// (prev) and what this one sees (cur), scanned at now, from the
// generator's record alone. It follows the rules of audit.Detector.Compare
// (see shared/audit/detect.go), written again from its documentation.
func (w *world) expect(prev, cur map[int64]map[int64]*rowState, now time.Time, cutoff func(time.Time) time.Time) []Expected {
	var out []Expected
	for _, s := range w.sheets {
		ids := map[int64]bool{}
		for id := range prev[s] {
			ids[id] = true
		}
		for id := range cur[s] {
			ids[id] = true
		}
		sorted := make([]int64, 0, len(ids))
		for id := range ids {
			sorted = append(sorted, id)
		}
		sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
		for _, id := range sorted {
			out = append(out, w.expectRow(s, id, prev[s][id], cur[s][id], now, cutoff)...)
		}
	}
	return out
}

func (w *world) expectRow(s, id int64, p, c *rowState, now time.Time, cutoff func(time.Time) time.Time) []Expected {
	users := func(ref cellRef) []string {
		var u []string
		for _, m := range []map[cellRef]string{w.saved, w.changed} {
			if e, ok := m[ref]; ok {
				u = append(u, e)
			}
		}
		return u
	}
	switch {
	case p == nil && c == nil:
		return nil
	case p == nil:
		week, ok := weekOf(c.vals)
		if !ok || !billable(c.vals) || now.Before(cutoff(week)) || c.createdAt.Before(cutoff(week)) {
			return nil
		}
		return []Expected{{key: changeKey(s, id, string(audit.KindRowAddedLate), "(row)", "", c.vals[smartsim.ColTotalPrice]), users: []string{c.createdBy},
			impact: fixed(money(c.vals[smartsim.ColTotalPrice]))}}
	case c == nil:
		if !billable(p.vals) {
			return nil
		}
		return []Expected{{key: changeKey(s, id, string(audit.KindRowDeleted), "(row)", p.vals[smartsim.ColTotalPrice], ""), users: []string{w.deletedBy[[2]int64{s, id}]},
			impact: fixed(money(p.vals[smartsim.ColTotalPrice]).Neg())}}
	}
	var out []Expected
	pv, cv := p.vals, c.vals
	oldWeek, okOld := weekOf(pv)
	newWeek, okNew := weekOf(cv)
	if okOld && okNew && !oldWeek.Equal(newWeek) {
		col := smartsim.ColSnapshotDate
		if strings.TrimSpace(cv[smartsim.ColWeekEnding]) != "" && pv[smartsim.ColWeekEnding] != cv[smartsim.ColWeekEnding] {
			col = smartsim.ColWeekEnding
		}
		oldV := fmt.Sprintf("%s (week ending %s)", orBlank(pv[col]), oldWeek.Format(time.DateOnly))
		newV := fmt.Sprintf("%s (week ending %s)", orBlank(cv[col]), newWeek.Format(time.DateOnly))
		price := pv[smartsim.ColTotalPrice]
		if strings.TrimSpace(price) == "" {
			price = cv[smartsim.ColTotalPrice]
		}
		out = append(out, Expected{key: changeKey(s, id, string(audit.KindWeekMoved), col, oldV, newV), users: users(cellRef{s, id, col}), impact: fixed(money(price))})
	}
	for _, t := range tracked {
		if pv[t] == cv[t] || norm(t, pv[t]) == norm(t, cv[t]) {
			continue
		}
		out = append(out, Expected{key: changeKey(s, id, string(audit.KindValueChanged), t, pv[t], cv[t]), users: users(cellRef{s, id, t}), impact: impactOf(t, pv, cv)})
	}
	return out
}

// auditRow is one row of the audit sheet as the soak reads it.
type auditRow struct {
	changeID, key, by, source string
	impact                    string
	sheet, row                int64
}

var trailingID = regexp.MustCompile(`(\d+)$`)

// readAudit reads the audit sheet straight from the simulator (no faults).
func (g *Game) readAudit() ([]auditRow, error) {
	sh, err := g.srv.Sheet(g.auditID)
	if err != nil {
		return nil, err
	}
	titles := map[int64]string{}
	for _, c := range sh.Columns {
		titles[c.ID] = c.Title
	}
	sheetByName := map[string]int64{}
	for id, name := range g.w.names {
		sheetByName[name] = id
	}
	out := make([]auditRow, 0, len(sh.Rows))
	for _, r := range sh.Rows {
		m := map[string]string{}
		var link string
		for _, c := range r.Cells {
			m[titles[c.ColumnID]] = c.Value.Text()
			if titles[c.ColumnID] == audit.LogSourceRow && c.Hyperlink != nil {
				link = c.Hyperlink.URL
			}
		}
		var row int64
		if g := trailingID.FindStringSubmatch(link); g != nil {
			row, _ = strconv.ParseInt(g[1], 10, 64)
		}
		oldV, newV := m[audit.LogOldValue], m[audit.LogNewValue]
		out = append(out, auditRow{
			changeID: m[audit.LogChangeID],
			key:      changeKey(sheetByName[m[audit.LogSourceSheet]], row, m[audit.LogKind], m[audit.LogColumn], oldV, newV),
			impact:   m[audit.LogImpact],
			by:       m[audit.LogChangedBy], source: m[audit.LogAttribution], sheet: sheetByName[m[audit.LogSourceSheet]], row: row,
		})
	}
	return out, nil
}
