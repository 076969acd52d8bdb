package smartsheet

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxPages guards page walks against a server that never says "last page".
const maxPages = 100000

// listAll walks an offset-paged list (IndexResult) and returns all items.
// The first request carries no page parameters unless pageSize is set, so it
// is the plain call; later pages ask for page=N with the same page size.
func listAll[T any](ctx context.Context, c *Client, endpoint, path string, q url.Values, pageSize int, class limitClass) ([]T, error) {
	var all []T
	err := walkPages(ctx, c, endpoint, path, q, pageSize, class, func(page []T) error {
		all = append(all, page...)
		return nil
	})
	return all, err
}

func walkPages[T any](ctx context.Context, c *Client, endpoint, path string, q url.Values, pageSize int, class limitClass, fn func([]T) error) error {
	for page := 1; page <= maxPages; page++ {
		qq := cloneValues(q)
		if pageSize > 0 {
			qq.Set("pageSize", strconv.Itoa(pageSize))
		}
		if page > 1 {
			qq.Set("page", strconv.Itoa(page))
		}
		var r IndexResult[T]
		rq := &call{endpoint: endpoint, method: "GET", path: path, query: qq, class: class}
		if err := c.do(ctx, rq, &r); err != nil {
			return err
		}
		if err := fn(r.Data); err != nil {
			return err
		}
		// The server answers the last page again for a page past the end, so
		// stop on its own page count, on a short page, or on a clamped number.
		if len(r.Data) == 0 || r.TotalPages <= page || (r.PageNumber != 0 && r.PageNumber < page) {
			return nil
		}
	}
	return nil
}

func cloneValues(q url.Values) url.Values {
	out := make(url.Values, len(q)+2)
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	return out
}

func joinIDs(ids []int64) string {
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(id, 10))
	}
	return b.String()
}

func id(i int64) string { return strconv.FormatInt(i, 10) }

func formatTime(t time.Time) string { return Timestamp(t) }
