// Package smartsheet holds the Smartsheet API 2.0 wire model and a client that
// is correct, economical and patient under Smartsheet's rate limits.
//
// The same model types are used by the simulator in shared/local/smartsim, so one
// set of JSON shapes (checked against ../shared/smartsheet/openapi.json and the
// SDK test scenarios) serves both sides.
package smartsheet

import (
	"encoding/json"
	"time"
)

// Column types used by this project.
const (
	TypeTextNumber = "TEXT_NUMBER"
	TypeDate       = "DATE"
	TypeDateTime   = "DATETIME"
	TypeCheckbox   = "CHECKBOX"
	TypePicklist   = "PICKLIST"
	TypeContact    = "CONTACT_LIST"
)

// User is the MiniUser shape: who created or modified something.
type User struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
}

// Hyperlink is a cell hyperlink: a URL, or a link to a sheet or report.
type Hyperlink struct {
	URL      string `json:"url,omitempty"`
	SheetID  int64  `json:"sheetId,omitempty"`
	ReportID int64  `json:"reportId,omitempty"`
	SightID  int64  `json:"sightId,omitempty"`
}

// Cell is one cell of a row.
type Cell struct {
	ColumnID     int64      `json:"columnId"`
	Value        Value      `json:"value,omitzero"`
	DisplayValue string     `json:"displayValue,omitempty"`
	Formula      string     `json:"formula,omitempty"`
	Hyperlink    *Hyperlink `json:"hyperlink,omitempty"`
	// ClearHyperlink sends `"hyperlink": null`, which removes a hyperlink.
	ClearHyperlink bool            `json:"-"`
	LinkInFromCell json.RawMessage `json:"linkInFromCell,omitempty"`
	ObjectValue    json.RawMessage `json:"objectValue,omitempty"`
	Strict         *bool           `json:"strict,omitempty"`
	Format         string          `json:"format,omitempty"`
	ColumnType     string          `json:"columnType,omitempty"`
}

// MarshalJSON writes the cell, with `"hyperlink": null` when ClearHyperlink is set.
func (c Cell) MarshalJSON() ([]byte, error) {
	type plain Cell
	if !c.ClearHyperlink {
		return json.Marshal(plain(c))
	}
	return json.Marshal(struct {
		plain
		Hyperlink *Hyperlink `json:"hyperlink"`
	}{plain: plain(c)})
}

// Row is one sheet row. Location fields (ToTop, ToBottom, ParentID, SiblingID,
// Above) are only sent on writes.
type Row struct {
	ID         int64      `json:"id,omitempty"`
	SheetID    int64      `json:"sheetId,omitempty"`
	RowNumber  int        `json:"rowNumber,omitempty"`
	Version    int64      `json:"version,omitempty"`
	Expanded   *bool      `json:"expanded,omitempty"`
	CreatedAt  *time.Time `json:"createdAt,omitempty"`
	ModifiedAt *time.Time `json:"modifiedAt,omitempty"`
	CreatedBy  *User      `json:"createdBy,omitempty"`
	ModifiedBy *User      `json:"modifiedBy,omitempty"`
	// Permalink is returned with include=rowPermalink (the spec spells it permaLink;
	// decoding is case-insensitive).
	Permalink string `json:"permalink,omitempty"`
	Format    string `json:"format,omitempty"`
	Locked    *bool  `json:"locked,omitempty"`
	Cells     []Cell `json:"cells,omitempty"`

	ToTop     bool  `json:"toTop,omitempty"`
	ToBottom  bool  `json:"toBottom,omitempty"`
	ParentID  int64 `json:"parentId,omitempty"`
	SiblingID int64 `json:"siblingId,omitempty"`
	Above     bool  `json:"above,omitempty"`
}

// Cell returns the row's cell for a column, or nil.
func (r *Row) Cell(columnID int64) *Cell {
	for i := range r.Cells {
		if r.Cells[i].ColumnID == columnID {
			return &r.Cells[i]
		}
	}
	return nil
}

// Column is a sheet column.
type Column struct {
	ID               int64    `json:"id,omitempty"`
	Index            int      `json:"index"`
	Title            string   `json:"title"`
	Type             string   `json:"type,omitempty"`
	Primary          bool     `json:"primary,omitempty"`
	SystemColumnType string   `json:"systemColumnType,omitempty"`
	Options          []string `json:"options,omitempty"`
	Validation       *bool    `json:"validation,omitempty"`
	Width            int      `json:"width,omitempty"`
	// Locked columns can be edited only by the sheet's owner and admins.
	// Smartsheet returns it only when true; the simulator stores and returns
	// it without enforcing it.
	Locked      *bool  `json:"locked,omitempty"`
	Hidden      bool   `json:"hidden,omitempty"`
	Description string `json:"description,omitempty"`
	// Format is the column's format descriptor (e.g. FormatCurrencyUSD),
	// the baseline of the cells created in it. GET /sheets/{id} returns it
	// only with include=format (IncludeFormat).
	Format string `json:"format,omitempty"`
	// ContactOptions are the suggested contacts of a CONTACT_LIST column.
	ContactOptions []User `json:"contactOptions,omitempty"`
	// AutoNumberFormat is passed through unchanged.
	AutoNumberFormat json.RawMessage `json:"autoNumberFormat,omitempty"`
}

// Sheet is a sheet with its columns and (a page of) its rows.
type Sheet struct {
	ID            int64        `json:"id,omitempty"`
	Name          string       `json:"name"`
	Version       int64        `json:"version,omitempty"`
	TotalRowCount int          `json:"totalRowCount,omitempty"`
	AccessLevel   string       `json:"accessLevel,omitempty"`
	Permalink     string       `json:"permalink,omitempty"`
	CreatedAt     *time.Time   `json:"createdAt,omitempty"`
	ModifiedAt    *time.Time   `json:"modifiedAt,omitempty"`
	Columns       []Column     `json:"columns,omitempty"`
	Rows          []Row        `json:"rows,omitempty"`
	Attachments   []Attachment `json:"attachments,omitempty"`
}

// Column returns the sheet's column with that title, or nil.
func (s *Sheet) Column(title string) *Column {
	for i := range s.Columns {
		if s.Columns[i].Title == title {
			return &s.Columns[i]
		}
	}
	return nil
}

// SheetSummary is an item of a sheet listing (GET /sheets, folder contents).
type SheetSummary struct {
	ID          int64      `json:"id"`
	Name        string     `json:"name"`
	AccessLevel string     `json:"accessLevel,omitempty"`
	Permalink   string     `json:"permalink,omitempty"`
	CreatedAt   *time.Time `json:"createdAt,omitempty"`
	ModifiedAt  *time.Time `json:"modifiedAt,omitempty"`
}

// Folder is a folder with its sheets and sub-folders (GET /folders/{id}).
type Folder struct {
	ID        int64          `json:"id"`
	Name      string         `json:"name"`
	Permalink string         `json:"permalink,omitempty"`
	Sheets    []SheetSummary `json:"sheets,omitempty"`
	Folders   []Folder       `json:"folders,omitempty"`
}

// Workspace is a workspace with its sheets and folders (GET /workspaces/{id}).
type Workspace struct {
	ID          int64          `json:"id"`
	Name        string         `json:"name"`
	AccessLevel string         `json:"accessLevel,omitempty"`
	Permalink   string         `json:"permalink,omitempty"`
	Sheets      []SheetSummary `json:"sheets,omitempty"`
	Folders     []Folder       `json:"folders,omitempty"`
}

// CellHistory is one entry of a cell's history, newest first.
type CellHistory struct {
	ColumnID     int64      `json:"columnId"`
	Value        Value      `json:"value,omitzero"`
	DisplayValue string     `json:"displayValue,omitempty"`
	ModifiedAt   *time.Time `json:"modifiedAt,omitempty"`
	ModifiedBy   *User      `json:"modifiedBy,omitempty"`
}

// Attachment is a file (or link) attached to a sheet or a row.
type Attachment struct {
	ID             int64      `json:"id,omitempty"`
	Name           string     `json:"name,omitempty"`
	Description    string     `json:"description,omitempty"`
	URL            string     `json:"url,omitempty"`
	AttachmentType string     `json:"attachmentType,omitempty"`
	MimeType       string     `json:"mimeType,omitempty"`
	SizeInKb       int64      `json:"sizeInKb,omitempty"`
	ParentType     string     `json:"parentType,omitempty"`
	ParentID       int64      `json:"parentId,omitempty"`
	CreatedAt      *time.Time `json:"createdAt,omitempty"`
	CreatedBy      *User      `json:"createdBy,omitempty"`
	// URLExpiresInMillis is how long URL (a download link) stays valid.
	URLExpiresInMillis int64 `json:"urlExpiresInMillis,omitempty"`
}

// Subscope narrows a webhook to some columns.
type Subscope struct {
	ColumnIDs []int64 `json:"columnIds,omitempty"`
}

// Webhook statuses.
const (
	WebhookEnabled                    = "ENABLED"
	WebhookNewNotVerified             = "NEW_NOT_VERIFIED"
	WebhookDisabledByOwner            = "DISABLED_BY_OWNER"
	WebhookDisabledCallbackFailed     = "DISABLED_CALLBACK_FAILED"
	WebhookDisabledVerificationFailed = "DISABLED_VERIFICATION_FAILED"
	WebhookDisabledScopeInaccessible  = "DISABLED_SCOPE_INACCESSIBLE"
)

// Webhook is a webhook subscription.
type Webhook struct {
	ID              int64      `json:"id,omitempty"`
	Name            string     `json:"name,omitempty"`
	APIClientID     string     `json:"apiClientId,omitempty"`
	CallbackURL     string     `json:"callbackUrl,omitempty"`
	Scope           string     `json:"scope,omitempty"`
	ScopeObjectID   int64      `json:"scopeObjectId,omitempty"`
	Subscope        *Subscope  `json:"subscope,omitempty"`
	Events          []string   `json:"events,omitempty"`
	Version         int        `json:"version,omitempty"`
	Enabled         *bool      `json:"enabled,omitempty"`
	Status          string     `json:"status,omitempty"`
	DisabledDetails string     `json:"disabledDetails,omitempty"`
	SharedSecret    string     `json:"sharedSecret,omitempty"`
	CreatedAt       *time.Time `json:"createdAt,omitempty"`
	ModifiedAt      *time.Time `json:"modifiedAt,omitempty"`
}

// UserProfile is the answer of GET /users/me and GET /users/{userId}.
type UserProfile struct {
	ID        int64  `json:"id"`
	Email     string `json:"email"`
	Name      string `json:"name,omitempty"`
	FirstName string `json:"firstName,omitempty"`
	LastName  string `json:"lastName,omitempty"`
	Locale    string `json:"locale,omitempty"`
	TimeZone  string `json:"timeZone,omitempty"`
	Admin     bool   `json:"admin,omitempty"`
}

// ErrorBody is the error shape of every failed request and of failed items.
type ErrorBody struct {
	ErrorCode int             `json:"errorCode"`
	Message   string          `json:"message"`
	RefID     string          `json:"refId,omitempty"`
	Detail    json.RawMessage `json:"detail,omitempty"`
}

// FailedItem is one failed row of a partial-success bulk write.
type FailedItem struct {
	Index int       `json:"index"`
	RowID int64     `json:"rowId,omitempty"`
	Error ErrorBody `json:"error"`
}

// Result codes of a write.
const (
	ResultSuccess        = 0
	ResultPartialSuccess = 3
)

// Result is the envelope of every write: message, resultCode, result, version
// and (for partial success) failedItems.
type Result[T any] struct {
	Message     string       `json:"message"`
	ResultCode  int          `json:"resultCode"`
	Result      T            `json:"result"`
	Version     int64        `json:"version,omitempty"`
	FailedItems []FailedItem `json:"failedItems,omitempty"`
}

// IndexResult is one page of a list endpoint.
type IndexResult[T any] struct {
	PageNumber int `json:"pageNumber"`
	PageSize   int `json:"pageSize,omitempty"`
	TotalPages int `json:"totalPages"`
	TotalCount int `json:"totalCount"`
	Data       []T `json:"data"`
}

// WebhookEvent is one event of a webhook callback.
type WebhookEvent struct {
	ObjectType  string    `json:"objectType"`
	EventType   string    `json:"eventType"`
	ID          int64     `json:"id,omitempty"`
	RowID       int64     `json:"rowId,omitempty"`
	ColumnID    int64     `json:"columnId,omitempty"`
	UserID      int64     `json:"userId,omitempty"`
	Timestamp   time.Time `json:"timestamp"`
	ChangeAgent string    `json:"changeAgent,omitempty"`
}

// WebhookCallback is the body Smartsheet posts to a webhook's callback URL.
type WebhookCallback struct {
	Nonce            string         `json:"nonce,omitempty"`
	Timestamp        time.Time      `json:"timestamp"`
	WebhookID        int64          `json:"webhookId"`
	Scope            string         `json:"scope,omitempty"`
	ScopeObjectID    int64          `json:"scopeObjectId,omitempty"`
	Events           []WebhookEvent `json:"events,omitempty"`
	NewWebhookStatus string         `json:"newWebhookStatus,omitempty"`
	Challenge        string         `json:"challenge,omitempty"`
}

// Timestamp formats t the way Smartsheet does: UTC, seconds, trailing Z.
func Timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }
