package smartsheet

import (
	"context"
	"fmt"
	"io"
	"net/url"
)

// MaxAttachmentBytes is Smartsheet's file size limit (30 MB).
const MaxAttachmentBytes = 30 << 20

// AttachFile uploads a file to a sheet (raw body upload). The content is
// buffered (at most MaxAttachmentBytes) so the upload can be retried.
func (c *Client) AttachFile(ctx context.Context, sheetID int64, name, contentType string, content io.Reader) (*Attachment, error) {
	a, err := c.upload(ctx, sheetID, "POST /sheets/{sheetId}/attachments", "/sheets/"+id(sheetID)+"/attachments", name, contentType, content)
	if err != nil {
		return nil, fmt.Errorf("attach %q to sheet %d: %w", name, sheetID, err)
	}
	return a, nil
}

// AttachFileToRow uploads a file to a row.
func (c *Client) AttachFileToRow(ctx context.Context, sheetID, rowID int64, name, contentType string, content io.Reader) (*Attachment, error) {
	path := "/sheets/" + id(sheetID) + "/rows/" + id(rowID) + "/attachments"
	a, err := c.upload(ctx, sheetID, "POST /sheets/{sheetId}/rows/{rowId}/attachments", path, name, contentType, content)
	if err != nil {
		return nil, fmt.Errorf("attach %q to sheet %d row %d: %w", name, sheetID, rowID, err)
	}
	return a, nil
}

// AttachNewVersion uploads a new version of an existing file attachment
// (instead of piling up duplicates).
func (c *Client) AttachNewVersion(ctx context.Context, sheetID, attachmentID int64, name, contentType string, content io.Reader) (*Attachment, error) {
	path := "/sheets/" + id(sheetID) + "/attachments/" + id(attachmentID) + "/versions"
	a, err := c.upload(ctx, sheetID, "POST /sheets/{sheetId}/attachments/{attachmentId}/versions", path, name, contentType, content)
	if err != nil {
		return nil, fmt.Errorf("attach new version %q of attachment %d on sheet %d: %w", name, attachmentID, sheetID, err)
	}
	return a, nil
}

// AttachLink attaches a URL to a sheet (a.AttachmentType "LINK", a.URL, a.Name).
func (c *Client) AttachLink(ctx context.Context, sheetID int64, a Attachment) (*Attachment, error) {
	var r Result[Attachment]
	if err := c.doJSON(ctx, "POST /sheets/{sheetId}/attachments", "POST", "/sheets/"+id(sheetID)+"/attachments", nil, a, &r, sheetID); err != nil {
		return nil, fmt.Errorf("attach link %q to sheet %d: %w", a.Name, sheetID, err)
	}
	return &r.Result, nil
}

// ListAttachments lists a sheet's attachments (sheet and rows), all pages.
func (c *Client) ListAttachments(ctx context.Context, sheetID int64) ([]Attachment, error) {
	out, err := listAll[Attachment](ctx, c, "GET /sheets/{sheetId}/attachments", "/sheets/"+id(sheetID)+"/attachments", nil, 0, limitGeneral)
	if err != nil {
		return nil, fmt.Errorf("list attachments of sheet %d: %w", sheetID, err)
	}
	return out, nil
}

func (c *Client) upload(ctx context.Context, sheetID int64, endpoint, path, name, contentType string, content io.Reader) (*Attachment, error) {
	if name == "" {
		return nil, fmt.Errorf("file name is required")
	}
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	data, err := io.ReadAll(io.LimitReader(content, MaxAttachmentBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read content: %w", err)
	}
	if len(data) > MaxAttachmentBytes {
		return nil, fmt.Errorf("file is larger than %d bytes", MaxAttachmentBytes)
	}
	rq := &call{
		endpoint:    endpoint,
		method:      "POST",
		path:        path,
		body:        data, // http sets Content-Length from the buffered body
		contentType: contentType,
		header:      map[string]string{"Content-Disposition": ContentDisposition(name)},
		writeSheet:  sheetID,
	}
	var r Result[Attachment]
	if err := c.do(ctx, rq, &r); err != nil {
		return nil, err
	}
	return &r.Result, nil
}

// ContentDisposition is the upload header for a file name:
// attachment; filename="<url-encoded name>".
func ContentDisposition(name string) string {
	return `attachment; filename="` + url.PathEscape(name) + `"`
}
