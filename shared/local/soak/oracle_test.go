package soak

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/local/demo"
	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// counts are the oracle's tallies of one Check.
type counts struct {
	Lost, Duplicated, Unexpected, Deleted, Misattributed, WrongImpact int
}

func countsOf(r Result) counts {
	return counts{Lost: r.Lost, Duplicated: r.Duplicated, Unexpected: r.Unexpected, Deleted: r.Deleted, Misattributed: r.Misattributed, WrongImpact: r.WrongImpact}
}

// auditLog is the audit sheet as a person with edit rights sees it in the
// simulator, for the damage of TestOracleReportsDamage.
type auditLog struct {
	t   *testing.T
	srv *smartsim.Server
	id  int64
	col map[string]int64
	// rows are the oracle's reading of the sheet; sheet its rows by Change
	// ID; seen the Change IDs an earlier Check saw.
	rows  []auditRow
	sheet map[string]smartsheet.Row
	seen  map[string]bool
}

// pick is the first audit row that an earlier Check saw (old) or that this
// round's run wrote (fresh), and that fits.
func (l auditLog) pick(old bool, fits func(auditRow) bool) auditRow {
	l.t.Helper()
	for _, r := range l.rows {
		if r.changeID != "" && l.seen[r.changeID] == old && (fits == nil || fits(r)) {
			return r
		}
	}
	l.t.Fatalf("no audit row with old=%v fits the damage among %d rows: a larger soak is needed", old, len(l.rows))
	return auditRow{}
}

// set writes one cell of r's audit row, as Dana would in the grid.
func (l auditLog) set(r auditRow, title string, v smartsheet.Value) {
	l.t.Helper()
	if _, err := l.srv.SetCell(smartsim.Edit{User: demo.Dana}, l.id, l.sheet[r.changeID].ID, l.col[title], v); err != nil {
		l.t.Fatalf("set %s of audit row %s: %v", title, r.changeID, err)
	}
}

// copyRow adds a copy of r's audit row at the bottom, its Change ID
// replaced by changeID unless that is empty.
func (l auditLog) copyRow(r auditRow, changeID string) {
	l.t.Helper()
	var cells []smartsheet.Cell
	for _, c := range l.sheet[r.changeID].Cells {
		cell := smartsheet.Cell{ColumnID: c.ColumnID, Value: c.Value}
		if c.Hyperlink != nil {
			cell.Hyperlink = &smartsheet.Hyperlink{URL: c.Hyperlink.URL}
		}
		if c.ColumnID == l.col[audit.LogChangeID] && changeID != "" {
			cell.Value = smartsheet.StringValue(changeID)
		}
		if cell.Value.IsZero() && cell.Hyperlink == nil {
			continue
		}
		cells = append(cells, cell)
	}
	if _, err := l.srv.AddRows(smartsim.Edit{User: demo.Dana}, l.id, []smartsheet.Row{{ToBottom: true, Cells: cells}}); err != nil {
		l.t.Fatalf("copy audit row %s: %v", r.changeID, err)
	}
}

// remove deletes r's audit row.
func (l auditLog) remove(r auditRow) {
	l.t.Helper()
	if _, err := l.srv.DeleteRows(smartsim.Edit{User: demo.Dana}, l.id, []int64{l.sheet[r.changeID].ID}); err != nil {
		l.t.Fatalf("delete audit row %s: %v", r.changeID, err)
	}
}

// withNewValue is r's key with its new value replaced by v.
func withNewValue(r auditRow, v string) string {
	return r.key[:strings.LastIndex(r.key, "|")+1] + v
}

// TestOracleReportsDamage: the soak's oracle is only ever run on clean
// soaks, so nothing else shows it would see a real failure. Each case plays
// a small fault-free soak, damages the audit sheet after round 2's run and
// before its Check, the way a bug in the run (or a person with edit rights)
// would, and wants the oracle to count it and name the damaged row. Each
// case fails if the oracle's check for its damage is taken out.
func TestOracleReportsDamage(t *testing.T) {
	tests := []struct {
		name string
		// damage edits the audit sheet and returns the row it damaged.
		damage func(l auditLog) auditRow
		want   counts
		// problems are the round's Problems the oracle must report besides
		// verify's, each What a substring of the Problem's.
		problems func(r auditRow) []Problem
	}{
		{
			name:     "undamaged",
			damage:   func(l auditLog) auditRow { return auditRow{} },
			problems: func(auditRow) []Problem { return nil },
		},
		{
			name:   "row deleted after a Check saw it",
			damage: func(l auditLog) auditRow { r := l.pick(true, nil); l.remove(r); return r },
			want:   counts{Deleted: 1, Lost: 1},
			problems: func(r auditRow) []Problem {
				return []Problem{{Kind: "deleted", What: "Change ID " + r.changeID}, {Kind: "lost", What: r.key}}
			},
		},
		{
			name:     "row deleted before its first Check (never written)",
			damage:   func(l auditLog) auditRow { r := l.pick(false, nil); l.remove(r); return r },
			want:     counts{Lost: 1},
			problems: func(r auditRow) []Problem { return []Problem{{Kind: "lost", What: r.key}} },
		},
		{
			name: "new value altered",
			damage: func(l auditLog) auditRow {
				r := l.pick(false, func(r auditRow) bool { return strings.Contains(r.key, "|"+string(audit.KindValueChanged)+"|") })
				l.set(r, audit.LogNewValue, smartsheet.StringValue("TAMPERED"))
				return r
			},
			want: counts{Lost: 1, Unexpected: 1},
			problems: func(r auditRow) []Problem {
				return []Problem{{Kind: "lost", What: r.key}, {Kind: "unexpected", What: withNewValue(r, "TAMPERED")}}
			},
		},
		{
			name: "money impact altered",
			damage: func(l auditLog) auditRow {
				r := l.pick(false, func(r auditRow) bool { return strings.TrimSpace(r.impact) != "123456.78" })
				l.set(r, audit.LogImpact, smartsheet.NumberValue("123456.78"))
				return r
			},
			want: counts{WrongImpact: 1},
			problems: func(r auditRow) []Problem {
				return []Problem{{Kind: "wrong-impact", What: r.key + `: money impact "123456.78"`}}
			},
		},
		{
			name: "changed by altered",
			damage: func(l auditLog) auditRow {
				// A row whose author the product claims to know: the
				// oracle checks no other.
				r := l.pick(false, func(r auditRow) bool {
					return r.by != "" && r.source != "" && r.source != string(audit.SourceUnknown)
				})
				l.set(r, audit.LogChangedBy, smartsheet.StringValue(demo.Priya.Name))
				return r
			},
			want: counts{Misattributed: 1},
			problems: func(r auditRow) []Problem {
				return []Problem{{Kind: "misattributed", What: fmt.Sprintf("%s: named %q", r.key, demo.Priya.Name)}}
			},
		},
		{
			name:   "row written twice",
			damage: func(l auditLog) auditRow { r := l.pick(false, nil); l.copyRow(r, ""); return r },
			// Once as the change, once as the Change ID.
			want: counts{Duplicated: 2},
			problems: func(r auditRow) []Problem {
				return []Problem{{Kind: "duplicated", What: r.key + ": on the sheet 2 times"}, {Kind: "duplicated", What: "Change ID " + r.changeID + " on 2 audit rows"}}
			},
		},
		{
			name: "earlier change written again under a new Change ID",
			damage: func(l auditLog) auditRow {
				r := l.pick(true, nil)
				l.copyRow(r, "rewritten-"+r.changeID)
				return r
			},
			want: counts{Duplicated: 1},
			problems: func(r auditRow) []Problem {
				return []Problem{{Kind: "duplicated", What: r.key + ": on the sheet 2 times"}}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			cfg := Config{Seed: 1, Rounds: 2, EditsPerRound: 30, Sheets: 2, Rows: 40, Weeks: 4, Dir: t.TempDir()}.withDefaults()
			h, err := setup(cfg)
			if h != nil {
				defer h.close()
			}
			if err != nil {
				t.Fatalf("setup() error = %v", err)
			}
			// Rounds 0 and 1 are clean: what round 2 finds is the damage's.
			for n := range 2 {
				if err := h.round(ctx, n); err != nil {
					t.Fatalf("round(%d) error = %v", n, err)
				}
			}
			if res := h.Result(); !res.OK() {
				t.Fatalf("the soak found problems before the damage: %s %v", res.Line(), res.Problems)
			}
			exp, err := h.Play(2)
			if err != nil {
				t.Fatalf("Play(2) error = %v", err)
			}
			if err := h.complete(ctx, 2); err != nil {
				t.Fatalf("complete(2) error = %v", err)
			}
			damaged := tt.damage(h.auditLog(t))
			if err := h.Check(ctx, 2, exp, h.verify); err != nil {
				t.Fatalf("Check(2) error = %v", err)
			}
			res := h.Result()
			t.Log(res.Line())
			if got := countsOf(res); got != tt.want {
				t.Errorf("counts = %+v, want %+v", got, tt.want)
			}
			var kinds []string
			for _, p := range res.Problems {
				t.Logf("problem: %s", p)
				if p.Kind != "verify" {
					kinds = append(kinds, p.Kind)
				}
			}
			var wantKinds []string
			for _, w := range tt.problems(damaged) {
				wantKinds = append(wantKinds, w.Kind)
				if !reported(res.Problems, w) {
					t.Errorf("no %s problem naming %q", w.Kind, w.What)
				}
			}
			sort.Strings(kinds)
			sort.Strings(wantKinds)
			if got, want := strings.Join(kinds, ","), strings.Join(wantKinds, ","); got != want {
				t.Errorf("problem kinds = %q, want %q", got, want)
			}
		})
	}
}

// reported reports whether a round-2 Problem of want's kind names want.What.
func reported(problems []Problem, want Problem) bool {
	for _, p := range problems {
		if p.Round == 2 && p.Kind == want.Kind && strings.Contains(p.What, want.What) {
			return true
		}
	}
	return false
}

// auditLog reads the audit sheet as it is now, for a test to damage.
func (h *harness) auditLog(t *testing.T) auditLog {
	t.Helper()
	rows, err := h.readAudit()
	if err != nil {
		t.Fatalf("read the audit sheet: %v", err)
	}
	sh, err := h.srv.Sheet(h.auditID)
	if err != nil {
		t.Fatalf("read the audit sheet: %v", err)
	}
	l := auditLog{t: t, srv: h.srv, id: h.auditID, col: map[string]int64{}, rows: rows, sheet: map[string]smartsheet.Row{}, seen: map[string]bool{}}
	for _, c := range sh.Columns {
		l.col[c.Title] = c.ID
	}
	for _, r := range sh.Rows {
		if c := r.Cell(l.col[audit.LogChangeID]); c != nil && c.Value.Text() != "" {
			l.sheet[c.Value.Text()] = r
		}
	}
	for id := range h.seen {
		l.seen[id] = true
	}
	return l
}
