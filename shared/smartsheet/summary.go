package smartsheet

import (
	"context"
	"fmt"
	"net/url"
	"time"
)

// SummaryField is a field of a sheet summary: a titled value attached to the
// sheet rather than to a row (a period, a total, a status). Its value is
// typed like a cell's: ObjectValue holds a string or a number for
// TEXT_NUMBER (numbers keep their exact JSON text), "YYYY-MM-DD" for DATE, a
// boolean for CHECKBOX.
type SummaryField struct {
	ID int64 `json:"id,omitempty"`
	// Index is the zero-based position in the summary. On add, nil appends
	// the field; on update, nil leaves it in place.
	Index *int   `json:"index,omitempty"`
	Title string `json:"title,omitempty"`
	// Type is a column type (TypeTextNumber, TypeDate, TypeCheckbox, ...).
	Type string `json:"type,omitempty"`
	// ObjectValue is the value. On update, the zero Value leaves it
	// unchanged and StringValue("") clears it.
	ObjectValue  Value  `json:"objectValue,omitzero"`
	DisplayValue string `json:"displayValue,omitempty"`
	// Format is the format descriptor (e.g. FormatCurrencyUSD).
	Format        string     `json:"format,omitempty"`
	Locked        *bool      `json:"locked,omitempty"`
	LockedForUser *bool      `json:"lockedForUser,omitempty"`
	Options       []string   `json:"options,omitempty"`
	Validation    *bool      `json:"validation,omitempty"`
	CreatedAt     *time.Time `json:"createdAt,omitempty"`
	ModifiedAt    *time.Time `json:"modifiedAt,omitempty"`
	CreatedBy     *User      `json:"createdBy,omitempty"`
	ModifiedBy    *User      `json:"modifiedBy,omitempty"`
}

// summaryPath is the path of a sheet's summary fields.
func summaryPath(sheetID int64) string { return "/sheets/" + id(sheetID) + "/summary/fields" }

// GetSummaryFields returns all summary fields of a sheet in index order, with
// their format and writer info (createdBy, modifiedBy). It asks for every
// field in one page (includeAll) and still follows further pages if the
// server pages anyway.
func (c *Client) GetSummaryFields(ctx context.Context, sheetID int64) ([]SummaryField, error) {
	q := url.Values{"includeAll": {"true"}, "include": {IncludeFormat + "," + IncludeWriterInfo}}
	out, err := listAll[SummaryField](ctx, c, "GET /sheets/{sheetId}/summary/fields", summaryPath(sheetID), q, 0, limitGeneral)
	if err != nil {
		return nil, fmt.Errorf("get summary fields of sheet %d: %w", sheetID, err)
	}
	return out, nil
}

// AddSummaryFields adds fields to a sheet's summary in one request and
// returns them as created (ids, indexes, display values). Each needs a Title
// unique within the summary; Type defaults to TEXT_NUMBER. Like other writes
// it is serialised with the client's other writes to the sheet.
func (c *Client) AddSummaryFields(ctx context.Context, sheetID int64, fields []SummaryField) ([]SummaryField, error) {
	if len(fields) == 0 {
		return nil, nil
	}
	var r Result[[]SummaryField]
	if err := c.doJSON(ctx, "POST /sheets/{sheetId}/summary/fields", "POST", summaryPath(sheetID), nil, fields, &r, sheetID); err != nil {
		return nil, fmt.Errorf("add summary fields to sheet %d: %w", sheetID, err)
	}
	return r.Result, nil
}

// UpdateSummaryFields changes summary fields (each needs ID; zero fields are
// not sent, so they keep their value) in one request and returns them as
// saved.
func (c *Client) UpdateSummaryFields(ctx context.Context, sheetID int64, fields []SummaryField) ([]SummaryField, error) {
	for i := range fields {
		if fields[i].ID == 0 {
			return nil, fmt.Errorf("update summary fields of sheet %d: field %d (%q) has no id", sheetID, i, fields[i].Title)
		}
	}
	if len(fields) == 0 {
		return nil, nil
	}
	var r Result[[]SummaryField]
	if err := c.doJSON(ctx, "PUT /sheets/{sheetId}/summary/fields", "PUT", summaryPath(sheetID), nil, fields, &r, sheetID); err != nil {
		return nil, fmt.Errorf("update summary fields of sheet %d: %w", sheetID, err)
	}
	return r.Result, nil
}
