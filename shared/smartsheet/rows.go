package smartsheet

import (
	"context"
	"fmt"
	"net/url"
)

// MaxRowsPerRequest is Smartsheet's limit of rows per add or update request.
const MaxRowsPerRequest = 500

// maxIDsPerDelete keeps DELETE /rows?ids=... URLs well under 8 KB.
const maxIDsPerDelete = 200

// AddRowsOptions says where new rows go and whether a bad row fails the request.
type AddRowsOptions struct {
	// ToTop or ToBottom sets the location of every row (overriding the rows'
	// own location fields). Leave both false to use the rows' fields.
	ToTop    bool
	ToBottom bool
	// AllowPartialSuccess adds the good rows and reports the bad ones in
	// RowsResult.Failed instead of failing the whole request.
	AllowPartialSuccess bool
	// NoReplay makes the add safe against duplicate rows: an attempt that
	// failed after Smartsheet may have saved the rows (a 500/502/503/504 with
	// errorCode 4002, 4004 or none, a timeout, a connection lost after the
	// request was sent, an unreadable success answer) is not sent again, and
	// the error satisfies IsAmbiguous. Answers that prove nothing was added
	// (429/4003, 4001 maintenance, a failed connect) are still retried. It is
	// not a query parameter; Smartsheet never sees it.
	//
	// Without it such failures are retried, which adds the rows twice when
	// only the answer was lost.
	NoReplay bool
}

// UpdateRowsOptions controls an update.
type UpdateRowsOptions struct {
	// AllowPartialSuccess updates the good rows and reports the bad ones.
	AllowPartialSuccess bool
}

// RowsResult is the outcome of a bulk row write split into requests of at
// most MaxRowsPerRequest rows.
type RowsResult struct {
	// Rows are the rows written, in the order of the caller's slice.
	Rows []Row
	// Failed are the rows refused under AllowPartialSuccess; Index is the
	// position in the caller's slice.
	Failed []FailedItem
	// Version is the sheet version after the last request.
	Version int64
}

// AddRows adds rows, MaxRowsPerRequest per request. With ToTop the requests
// go last chunk first, so the rows keep the caller's order at the top of the
// sheet. Without AllowPartialSuccess a failed request stops the add: the
// result holds the rows added so far and the error is a *BatchError naming
// the rows that failed. With NoReplay, a request whose outcome is unknown
// stops the add too: IsAmbiguous(err) is then true and the BatchError's rows
// may or may not be in the sheet (rows after them were not sent).
func (c *Client) AddRows(ctx context.Context, sheetID int64, rows []Row, opts AddRowsOptions) (*RowsResult, error) {
	if opts.ToTop && opts.ToBottom {
		return nil, fmt.Errorf("add rows to sheet %d: ToTop and ToBottom are exclusive", sheetID)
	}
	send := rows
	if opts.ToTop || opts.ToBottom {
		send = make([]Row, len(rows))
		for i, r := range rows {
			r.ToTop, r.ToBottom, r.ParentID, r.SiblingID, r.Above = opts.ToTop, opts.ToBottom, 0, 0, false
			send[i] = r
		}
	}
	res, err := c.writeRows(ctx, sheetID, "POST", send, opts.AllowPartialSuccess, opts.ToTop, opts.NoReplay)
	if err != nil {
		return res, fmt.Errorf("add rows to sheet %d: %w", sheetID, err)
	}
	return res, nil
}

// UpdateRows updates rows (each needs ID), MaxRowsPerRequest per request.
func (c *Client) UpdateRows(ctx context.Context, sheetID int64, rows []Row, opts UpdateRowsOptions) (*RowsResult, error) {
	for i := range rows {
		if rows[i].ID == 0 {
			return nil, fmt.Errorf("update rows of sheet %d: row %d has no id", sheetID, i)
		}
	}
	res, err := c.writeRows(ctx, sheetID, "PUT", rows, opts.AllowPartialSuccess, false, false)
	if err != nil {
		return res, fmt.Errorf("update rows of sheet %d: %w", sheetID, err)
	}
	return res, nil
}

type chunk struct{ off, n int }

func chunks(total, size int) []chunk {
	var out []chunk
	for off := 0; off < total; off += size {
		out = append(out, chunk{off, min(size, total-off)})
	}
	return out
}

func (c *Client) writeRows(ctx context.Context, sheetID int64, method string, rows []Row, partial, reverse, noReplay bool) (*RowsResult, error) {
	res := &RowsResult{}
	if len(rows) == 0 {
		return res, nil
	}
	var q url.Values
	if partial {
		q = url.Values{"allowPartialSuccess": {"true"}}
	}
	endpoint := method + " /sheets/{sheetId}/rows"
	path := "/sheets/" + id(sheetID) + "/rows"
	parts := chunks(len(rows), MaxRowsPerRequest)
	if reverse {
		for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
			parts[i], parts[j] = parts[j], parts[i]
		}
	}
	done := make([][]Row, len(rows)) // written rows by chunk start, to restore order
	for _, p := range parts {
		var r Result[[]Row]
		rq, err := c.newJSONCall(endpoint, method, path, rows[p.off:p.off+p.n])
		if err == nil {
			rq.query, rq.writeSheet, rq.noReplay = q, sheetID, noReplay
			err = c.do(ctx, rq, &r)
		}
		if err != nil {
			res.Rows = collect(done)
			return res, &BatchError{Offset: p.off, Count: p.n, Err: err}
		}
		done[p.off] = r.Result
		res.Version = r.Version
		for _, f := range r.FailedItems {
			f.Index += p.off
			res.Failed = append(res.Failed, f)
		}
	}
	res.Rows = collect(done)
	return res, nil
}

func collect(parts [][]Row) []Row {
	var out []Row
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// DeleteRowsOptions controls a delete.
type DeleteRowsOptions struct {
	// IgnoreRowsNotFound deletes the rows that exist instead of failing.
	IgnoreRowsNotFound bool
}

// DeleteRows deletes rows by id (in requests of at most 200 ids) and returns
// the ids deleted.
func (c *Client) DeleteRows(ctx context.Context, sheetID int64, rowIDs []int64, opts DeleteRowsOptions) ([]int64, error) {
	var deleted []int64
	for _, p := range chunks(len(rowIDs), maxIDsPerDelete) {
		q := url.Values{"ids": {joinIDs(rowIDs[p.off : p.off+p.n])}}
		if opts.IgnoreRowsNotFound {
			q.Set("ignoreRowsNotFound", "true")
		}
		var r Result[[]int64]
		rq := &call{endpoint: "DELETE /sheets/{sheetId}/rows", method: "DELETE", path: "/sheets/" + id(sheetID) + "/rows", query: q, writeSheet: sheetID}
		if err := c.do(ctx, rq, &r); err != nil {
			return deleted, fmt.Errorf("delete rows of sheet %d: %w", sheetID, &BatchError{Offset: p.off, Count: p.n, Err: err})
		}
		deleted = append(deleted, r.Result...)
	}
	return deleted, nil
}
