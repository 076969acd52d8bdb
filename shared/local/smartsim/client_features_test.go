package smartsim_test

// Client against simulator: sheet summary fields, column formats and locks,
// and writes that must not be replayed (AddRowsOptions.NoReplay).

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
	"github.com/google/go-cmp/cmp"
)

func titles(fields []smartsheet.SummaryField) []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = f.Title
	}
	return out
}

func TestClientSummaryFields(t *testing.T) {
	alice := smartsheet.User{Name: "Alice Auditor", Email: "alice@example.com"}
	env := mustSimEnv(t, smartsim.Options{Tokens: map[string]smartsheet.User{"test-token": alice}},
		func(c *smartsheet.Config) { c.ChangeAgent = "billing-audit" })
	ctx := t.Context()
	before, _, err := env.client.GetSheet(ctx, env.sheetID, smartsheet.GetSheetOptions{})
	if err != nil {
		t.Fatalf("GetSheet(%d) error = %v", env.sheetID, err)
	}

	added, err := env.client.AddSummaryFields(ctx, env.sheetID, []smartsheet.SummaryField{
		{Title: "Total", Type: smartsheet.TypeTextNumber, ObjectValue: smartsheet.NumberValue("4350.10"), Format: smartsheet.FormatCurrencyUSD},
		{Title: "Period end", Type: smartsheet.TypeDate, ObjectValue: smartsheet.StringValue("2024-06-09")},
		{Title: "Reviewed", Type: smartsheet.TypeCheckbox, ObjectValue: smartsheet.BoolValue(false)},
	})
	if err != nil {
		t.Fatalf("AddSummaryFields(%d) error = %v", env.sheetID, err)
	}
	if len(added) != 3 || added[0].ID == 0 || added[0].DisplayValue != "$4,350.10" || added[1].DisplayValue != "06/09/24" {
		t.Fatalf("AddSummaryFields(%d) = %+v, want 3 fields with ids, $4,350.10 and 06/09/24", env.sheetID, added)
	}

	if err := env.clock.Sleep(ctx, time.Minute); err != nil { // moves both clocks
		t.Fatal(err)
	}
	updated, err := env.client.UpdateSummaryFields(ctx, env.sheetID, []smartsheet.SummaryField{
		{ID: added[0].ID, ObjectValue: smartsheet.NumberValue("-40")},
		{ID: added[2].ID, ObjectValue: smartsheet.BoolValue(true)},
	})
	if err != nil {
		t.Fatalf("UpdateSummaryFields(%d) error = %v", env.sheetID, err)
	}
	if len(updated) != 2 || updated[0].DisplayValue != "-$40.00" || updated[0].Title != "Total" {
		t.Errorf("UpdateSummaryFields(%d) = %+v, want Total shown as -$40.00", env.sheetID, updated)
	}

	got, err := env.client.GetSummaryFields(ctx, env.sheetID)
	if err != nil {
		t.Fatalf("GetSummaryFields(%d) error = %v", env.sheetID, err)
	}
	if diff := cmp.Diff([]string{"Total", "Period end", "Reviewed"}, titles(got)); diff != "" {
		t.Errorf("GetSummaryFields(%d) titles (-want +got):\n%s", env.sheetID, diff)
	}
	total := got[0]
	if total.ObjectValue.Text() != "-40" || total.Format != smartsheet.FormatCurrencyUSD || total.ModifiedBy == nil ||
		*total.ModifiedBy != alice || !total.ModifiedAt.Equal(simT0.Add(time.Minute)) || !total.CreatedAt.Equal(simT0) {
		t.Errorf("GetSummaryFields(%d) Total = %+v, want -40 with its format, modified by %v a minute after creation", env.sheetID, total, alice)
	}
	if v, ok := got[2].ObjectValue.Bool(); !ok || !v {
		t.Errorf("GetSummaryFields(%d) Reviewed = %s, want true", env.sheetID, got[2].ObjectValue)
	}

	// Refused writes: a duplicate title and a value that is not a date.
	_, err = env.client.AddSummaryFields(ctx, env.sheetID, []smartsheet.SummaryField{{Title: "total"}})
	if !smartsheet.IsBadRequest(err) || smartsheet.ErrorCode(err) != smartsheet.CodeInvalidParameter {
		t.Errorf("AddSummaryFields(duplicate title) error = %v, want a bad request with errorCode 1018", err)
	}
	_, err = env.client.UpdateSummaryFields(ctx, env.sheetID, []smartsheet.SummaryField{{ID: added[1].ID, ObjectValue: smartsheet.StringValue("June 9")}})
	if smartsheet.ErrorCode(err) != smartsheet.CodeStrictTypeViolation {
		t.Errorf("UpdateSummaryFields(bad date) error = %v, want errorCode 1042", err)
	}

	after, _, err := env.client.GetSheet(ctx, env.sheetID, smartsheet.GetSheetOptions{})
	if err != nil {
		t.Fatalf("GetSheet(%d) error = %v", env.sheetID, err)
	}
	if after.Version != before.Version+2 {
		t.Errorf("sheet version = %d, want %d (two summary saves)", after.Version, before.Version+2)
	}
	evs := env.sim.Events(0)
	if last := evs[len(evs)-1]; last.ChangeAgent != "billing-audit" || last.User != alice {
		t.Errorf("last event = %+v, want change agent billing-audit by %v", last, alice)
	}
	for key, want := range map[string]int64{
		smartsim.EndpointAddSummaryFields: 2, smartsim.EndpointUpdateSummaryFields: 2, smartsim.EndpointListSummaryFields: 1,
	} {
		if got := env.sim.Counter(key).Calls; got != want {
			t.Errorf("simulator Counter(%s).Calls = %d, want %d", key, got, want)
		}
	}
	if got := env.client.Stats().Calls["POST /sheets/{sheetId}/summary/fields"]; got != 2 {
		t.Errorf("Stats().Calls[POST summary fields] = %d, want 2", got)
	}
}

func TestClientColumnFormatAndLock(t *testing.T) {
	env := mustSimEnv(t, smartsim.Options{})
	ctx := t.Context()
	locked := true
	sh, err := env.client.CreateSheet(ctx, "Audit log", []smartsheet.Column{
		{Title: "Change", Type: smartsheet.TypeTextNumber, Primary: true},
		{Title: "Impact", Type: smartsheet.TypeTextNumber, Format: smartsheet.FormatCurrencyUSD, Locked: &locked},
	})
	if err != nil {
		t.Fatalf("CreateSheet() error = %v", err)
	}
	impact := sh.Column("Impact")
	if impact.Format != smartsheet.FormatCurrencyUSD || impact.Locked == nil || !*impact.Locked {
		t.Fatalf("CreateSheet() Impact = %+v, want the USD format and locked", impact)
	}

	rows := []smartsheet.Row{
		{Cells: []smartsheet.Cell{{ColumnID: sh.Columns[0].ID, Value: smartsheet.StringValue("raise")}, {ColumnID: impact.ID, Value: smartsheet.NumberValue("4350")}}},
		{Cells: []smartsheet.Cell{{ColumnID: sh.Columns[0].ID, Value: smartsheet.StringValue("credit")}, {ColumnID: impact.ID, Value: smartsheet.NumberValue("-40")}}},
	}
	res, err := env.client.AddRows(ctx, sh.ID, rows, smartsheet.AddRowsOptions{ToBottom: true})
	if err != nil {
		t.Fatalf("AddRows(%d) error = %v", sh.ID, err)
	}
	var shown []string
	for _, r := range res.Rows {
		shown = append(shown, r.Cell(impact.ID).DisplayValue)
	}
	if diff := cmp.Diff([]string{"$4,350.00", "-$40.00"}, shown); diff != "" {
		t.Errorf("AddRows(%d) Impact display values (-want +got):\n%s", sh.ID, diff)
	}

	tests := []struct {
		name       string
		opts       smartsheet.GetSheetOptions
		wantFormat string
	}{
		{"plain GET has no formats", smartsheet.GetSheetOptions{}, ""},
		{"include=format", smartsheet.GetSheetOptions{Include: []string{smartsheet.IncludeFormat}}, smartsheet.FormatCurrencyUSD},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := env.client.GetSheet(ctx, sh.ID, tt.opts)
			if err != nil {
				t.Fatalf("GetSheet(%d, %+v) error = %v", sh.ID, tt.opts, err)
			}
			c := got.Column("Impact")
			if c.Format != tt.wantFormat || c.Locked == nil || !*c.Locked {
				t.Errorf("GetSheet(%d, %+v) Impact = %+v, want format %q and locked", sh.ID, tt.opts, c, tt.wantFormat)
			}
			if d := got.Rows[0].Cell(impact.ID).DisplayValue; d != "$4,350.00" {
				t.Errorf("GetSheet(%d, %+v) Impact cell display = %q, want $4,350.00", sh.ID, tt.opts, d)
			}
		})
	}

	cols, err := env.client.AddColumns(ctx, sh.ID, []smartsheet.Column{{Title: "Fee", Type: smartsheet.TypeTextNumber, Index: 2, Format: smartsheet.FormatCurrencyUSD}})
	if err != nil || len(cols) != 1 || cols[0].Format != smartsheet.FormatCurrencyUSD || cols[0].Locked != nil {
		t.Errorf("AddColumns(Fee) = %+v, %v, want the USD format and no lock", cols, err)
	}
	change := sh.Columns[0]
	col, err := env.client.UpdateColumn(ctx, sh.ID, change.ID, smartsheet.ColumnUpdate{Format: smartsheet.FormatCurrencyUSD, Locked: &locked})
	if err != nil || col.Format != smartsheet.FormatCurrencyUSD || col.Locked == nil || !*col.Locked {
		t.Errorf("UpdateColumn(%d, format and lock) = %+v, %v, want both set", change.ID, col, err)
	}
}

func TestClientAddRowsNoReplay(t *testing.T) {
	tests := []struct {
		name          string
		fault         smartsim.Fault
		edit          func(*smartsheet.Config)
		noReplay      bool
		wantAmbiguous bool
		wantRows      []string // the sheet's rows afterwards
		wantCalls     int64    // as the simulator counts them
	}{
		{name: "lost response is not replayed", fault: smartsim.Fault{Kind: smartsim.FaultLostResponse, Next: 1},
			noReplay: true, wantAmbiguous: true, wantRows: []string{"a", "b"}, wantCalls: 1},
		{name: "without NoReplay a lost response adds the rows twice", fault: smartsim.Fault{Kind: smartsim.FaultLostResponse, Next: 1},
			wantRows: []string{"a", "b", "a", "b"}, wantCalls: 2},
		{name: "4004 is not replayed", fault: smartsim.Fault{Kind: smartsim.FaultUnexpected, Next: 1},
			noReplay: true, wantAmbiguous: true, wantRows: []string{}, wantCalls: 1},
		{name: "bare 503 is not replayed", fault: smartsim.Fault{Kind: smartsim.Fault503, Next: 1},
			noReplay: true, wantAmbiguous: true, wantRows: []string{}, wantCalls: 1},
		{name: "timeout is not replayed", fault: smartsim.Fault{Kind: smartsim.FaultTimeout, Next: 1, Delay: 3 * time.Second},
			edit:     func(c *smartsheet.Config) { c.HTTPClient.Timeout = 150 * time.Millisecond },
			noReplay: true, wantAmbiguous: true, wantRows: []string{}, wantCalls: 1},
		{name: "maintenance is retried", fault: smartsim.Fault{Kind: smartsim.FaultMaintenance, Next: 1},
			noReplay: true, wantRows: []string{"a", "b"}, wantCalls: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var edits []func(*smartsheet.Config)
			if tt.edit != nil {
				edits = append(edits, tt.edit)
			}
			env := mustSimEnv(t, smartsim.Options{}, edits...)
			env.sim.SetFault(smartsim.EndpointAddRows, tt.fault)
			rows := []smartsheet.Row{env.row("a", smartsheet.BoolValue(false)), env.row("b", smartsheet.BoolValue(true))}
			opts := smartsheet.AddRowsOptions{ToBottom: true, NoReplay: tt.noReplay}

			_, err := env.client.AddRows(t.Context(), env.sheetID, rows, opts)

			if got := smartsheet.IsAmbiguous(err); got != tt.wantAmbiguous {
				t.Errorf("IsAmbiguous(AddRows(%+v) error %v) = %t, want %t", opts, err, got, tt.wantAmbiguous)
			}
			if (err != nil) != tt.wantAmbiguous {
				t.Errorf("AddRows(%+v) error = %v, want an error only when ambiguous", opts, err)
			}
			var be *smartsheet.BatchError
			if err != nil && !errors.As(err, &be) {
				t.Errorf("errors.As(%v, *BatchError) = false, want the failed rows named", err)
			}
			if diff := cmp.Diff(tt.wantRows, env.sheetNames(t)); diff != "" {
				t.Errorf("sheet rows after AddRows(%+v) (-want +got):\n%s", opts, diff)
			}
			if got := env.sim.Counter(smartsim.EndpointAddRows).Calls; got != tt.wantCalls {
				t.Errorf("simulator Counter(addRows).Calls = %d, want %d", got, tt.wantCalls)
			}
			if st := env.client.Stats(); st.Calls[statsAddRows] != tt.wantCalls || st.Retries != tt.wantCalls-1 {
				t.Errorf("Stats() = calls %v retries %d, want %d calls and %d retries", st.Calls, st.Retries, tt.wantCalls, tt.wantCalls-1)
			}
		})
	}
}

// TestClientAddRowsNoReplayRateLimited: a 429 proves nothing was added, so
// a NoReplay add waits and retries, and the rows arrive once.
func TestClientAddRowsNoReplayRateLimited(t *testing.T) {
	env := mustSimEnv(t, smartsim.Options{})
	env.sim.SetLimits(smartsim.Limits{PerMinute: 1})
	if _, _, err := env.client.GetSheet(t.Context(), env.sheetID, smartsheet.GetSheetOptions{}); err != nil {
		t.Fatalf("GetSheet(%d) error = %v", env.sheetID, err)
	}
	rows := []smartsheet.Row{env.row("a", smartsheet.BoolValue(false))}

	res, err := env.client.AddRows(t.Context(), env.sheetID, rows, smartsheet.AddRowsOptions{NoReplay: true})

	if err != nil {
		t.Fatalf("AddRows(NoReplay) error = %v, want success after the rate limit", err)
	}
	if diff := cmp.Diff([]string{"a"}, env.names(res.Rows)); diff != "" {
		t.Errorf("AddRows(NoReplay) rows (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"a"}, env.sheetNames(t)); diff != "" {
		t.Errorf("sheet rows (-want +got):\n%s", diff)
	}
	c := env.sim.Counter(smartsim.EndpointAddRows)
	st := env.client.Stats()
	if c.RateLimited == 0 || st.Throttled != c.RateLimited || c.Calls != c.RateLimited+1 {
		t.Errorf("simulator Counter(addRows) = %+v, client throttled %d; want >= 1 rate-limited call, each seen by the client, then one success", c, st.Throttled)
	}
	if slices.ContainsFunc(env.clock.Sleeps(), func(d time.Duration) bool { return d < 15*time.Second }) {
		t.Errorf("Sleep calls = %v, want rate-limit backoffs (>= 15s)", env.clock.Sleeps())
	}
}
