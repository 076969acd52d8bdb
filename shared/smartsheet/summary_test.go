package smartsheet

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSummaryFieldRequests(t *testing.T) {
	fieldsJSON := `[{"id":11,"index":0,"title":"Total","type":"TEXT_NUMBER","objectValue":4350.10,"displayValue":"$4,350.10"}]`
	srv := &scripted{replies: []reply{
		{200, `{"pageNumber":1,"pageSize":1,"totalPages":1,"totalCount":1,"data":` + fieldsJSON + `}`, nil},
		{200, `{"message":"SUCCESS","resultCode":0,"result":` + fieldsJSON + `,"version":3}`, nil},
		{200, `{"message":"SUCCESS","resultCode":0,"result":` + fieldsJSON + `,"version":4}`, nil},
	}}
	tc := mustTestClient(t, srv)
	ctx := context.Background()

	got, err := tc.GetSummaryFields(ctx, 7)
	if err != nil {
		t.Fatalf("GetSummaryFields(7) error = %v", err)
	}
	if len(got) != 1 || got[0].ObjectValue.Text() != "4350.10" || got[0].ObjectValue.Kind() != KindNumber || *got[0].Index != 0 {
		t.Errorf("GetSummaryFields(7) = %+v, want field 11 with the number 4350.10 at index 0", got)
	}
	if _, err := tc.AddSummaryFields(ctx, 7, []SummaryField{{Title: "Total", Type: TypeTextNumber, ObjectValue: NumberValue("4350.10"), Format: FormatCurrencyUSD}}); err != nil {
		t.Fatalf("AddSummaryFields(7) error = %v", err)
	}
	if _, err := tc.UpdateSummaryFields(ctx, 7, []SummaryField{{ID: 11, ObjectValue: StringValue("")}}); err != nil {
		t.Fatalf("UpdateSummaryFields(7) error = %v", err)
	}
	if _, err := tc.UpdateSummaryFields(ctx, 7, []SummaryField{{Title: "No id"}}); err == nil || !strings.Contains(err.Error(), "has no id") {
		t.Errorf("UpdateSummaryFields(7, field without id) error = %v, want a 'has no id' error", err)
	}

	reqs := srv.requests()
	type sent struct{ Method, Path, Query, Body, Agent string }
	var gotReqs []sent
	for _, r := range reqs {
		q, _ := url.QueryUnescape(r.query)
		gotReqs = append(gotReqs, sent{r.method, r.path, q, string(r.body), r.header.Get("Smartsheet-Change-Agent")})
	}
	want := []sent{
		{"GET", "/2.0/sheets/7/summary/fields", "include=format,writerInfo&includeAll=true", "", ""},
		{"POST", "/2.0/sheets/7/summary/fields", "", `[{"title":"Total","type":"TEXT_NUMBER","objectValue":4350.10,"format":",,,,,,,,,,,13,2,1,2,,"}]`, "billing-audit-test"},
		{"PUT", "/2.0/sheets/7/summary/fields", "", `[{"id":11,"objectValue":""}]`, "billing-audit-test"},
	}
	if diff := cmp.Diff(want, gotReqs); diff != "" {
		t.Errorf("summary field requests (-want +got):\n%s", diff)
	}
}

func TestFormatCurrencyUSD(t *testing.T) {
	parts := strings.Split(FormatCurrencyUSD, ",")
	if len(parts) != 17 {
		t.Fatalf("FormatCurrencyUSD has %d positions, want 17", len(parts))
	}
	// currency USD, 2 decimals, thousands separator on, numberFormat CURRENCY.
	want := map[int]string{11: "13", 12: "2", 13: "1", 14: "2"}
	for i, p := range parts {
		if p != want[i] {
			t.Errorf("FormatCurrencyUSD position %d = %q, want %q", i, p, want[i])
		}
	}
}
