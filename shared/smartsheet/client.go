package smartsheet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultBaseURL is Smartsheet's commercial US endpoint. Regional and
// government accounts use another base URL (see Config.BaseURL).
const DefaultBaseURL = "https://api.smartsheet.com/2.0"

// Defaults applied by New for zero Config fields.
const (
	DefaultRetryBudget       = 3 * time.Minute
	DefaultRequestsPerMinute = 300
	DefaultHistoryPerMinute  = 30
	maxResponseBytes         = 512 << 20
	maxErrorBodyBytes        = 64 << 10
)

// Config configures a Client. Only Token is required.
//
// Config never prints its token: String, GoString, Format and LogValue redact it.
type Config struct {
	// BaseURL is the API root, e.g. https://api.smartsheet.eu/2.0 or a simulator.
	BaseURL string
	// Token is the API access token sent as a bearer token.
	Token string
	// ChangeAgent is sent as Smartsheet-Change-Agent on every write, so webhook
	// events caused by this client can be recognised and ignored.
	ChangeAgent string
	// HTTPClient defaults to a client with a 2-minute timeout per attempt.
	HTTPClient *http.Client
	// RetryBudget bounds the total time spent on one call including retries
	// (default DefaultRetryBudget).
	RetryBudget time.Duration
	// RequestsPerMinute is the client-side budget of all calls (default 300).
	RequestsPerMinute int
	// HistoryPerMinute is the separate budget of cell-history calls (default 30).
	HistoryPerMinute int
	// Limiter, when set, is the rate budget the client asks before every
	// request, shared with every other client of the same token: a *Limiter
	// for clients in one process, a budget kept outside the process when
	// several processes use the token at once (dynamo.RateBudget). It
	// replaces RequestsPerMinute and HistoryPerMinute.
	Limiter RateLimiter
	// Now is the clock (default time.Now); tests inject a fake one.
	Now func() time.Time
	// Sleep waits d or until ctx is done (default: a timer). Tests inject a fake
	// that advances the fake clock.
	Sleep func(ctx context.Context, d time.Duration) error
	// Logger receives retry and throttling notes (default: discarded).
	Logger *slog.Logger
	// UserAgent is sent as User-Agent (default "billing-audit-smartsheet").
	UserAgent string
}

const redacted = "[REDACTED]"

func (c Config) redactedToken() string {
	if c.Token == "" {
		return ""
	}
	return redacted
}

// String describes the config without its token.
func (c Config) String() string {
	return fmt.Sprintf("smartsheet.Config{BaseURL:%q Token:%s ChangeAgent:%q RetryBudget:%s RequestsPerMinute:%d HistoryPerMinute:%d}",
		c.BaseURL, c.redactedToken(), c.ChangeAgent, c.RetryBudget, c.RequestsPerMinute, c.HistoryPerMinute)
}

// GoString is String: %#v must not print the token either.
func (c Config) GoString() string { return c.String() }

// Format implements fmt.Formatter so every verb (%v, %+v, %#v, %s, %d, ...) redacts.
func (c Config) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// LogValue implements slog.LogValuer without the token.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("base_url", c.BaseURL),
		slog.String("token", c.redactedToken()),
		slog.String("change_agent", c.ChangeAgent),
		slog.Duration("retry_budget", c.RetryBudget),
		slog.Int("requests_per_minute", c.RequestsPerMinute),
		slog.Int("history_per_minute", c.HistoryPerMinute),
	)
}

// secret holds the bearer token; every way of printing it redacts.
type secret struct{ v string }

func (s secret) String() string               { return redacted }
func (s secret) GoString() string             { return redacted }
func (s secret) Format(f fmt.State, _ rune)   { _, _ = io.WriteString(f, redacted) }
func (s secret) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (s secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }
func (s secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Client calls the Smartsheet API 2.0. It is safe for concurrent use. Every
// request asks the rate limiter (Config.Limiter) first, writes to one sheet
// are serialised, and retryable failures are retried with backoff within the
// retry budget.
type Client struct {
	baseURL     string
	token       secret
	changeAgent string
	userAgent   string
	hc          *http.Client
	budget      time.Duration
	limiter     RateLimiter
	locks       *sheetLocks
	now         func() time.Time
	sleep       func(ctx context.Context, d time.Duration) error
	jitter      func() float64 // in [0,1); 0.5 means no jitter
	log         *slog.Logger
	stats       statsRecorder
}

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	if strings.TrimSpace(cfg.Token) == "" {
		return nil, errors.New("smartsheet: config: Token is required")
	}
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("smartsheet: config: BaseURL %q is not an http(s) URL", base)
	}
	c := &Client{
		baseURL:     strings.TrimRight(base, "/"),
		token:       secret{cfg.Token},
		changeAgent: cfg.ChangeAgent,
		userAgent:   cfg.UserAgent,
		hc:          cfg.HTTPClient,
		budget:      cfg.RetryBudget,
		limiter:     cfg.Limiter,
		locks:       newSheetLocks(),
		now:         cfg.Now,
		sleep:       cfg.Sleep,
		jitter:      rand.Float64,
		log:         cfg.Logger,
	}
	if c.userAgent == "" {
		c.userAgent = "billing-audit-smartsheet"
	}
	if c.hc == nil {
		c.hc = &http.Client{Timeout: 2 * time.Minute}
	}
	if c.budget <= 0 {
		c.budget = DefaultRetryBudget
	}
	if c.limiter == nil {
		rpm, hpm := cfg.RequestsPerMinute, cfg.HistoryPerMinute
		if rpm == 0 {
			rpm = DefaultRequestsPerMinute
		}
		if hpm == 0 {
			hpm = DefaultHistoryPerMinute
		}
		c.limiter = NewLimiter(rpm, hpm)
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.sleep == nil {
		c.sleep = sleepCtx
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// String describes the client without its token.
func (c *Client) String() string { return fmt.Sprintf("smartsheet.Client{BaseURL:%q}", c.baseURL) }

// GoString is String.
func (c *Client) GoString() string { return c.String() }

// Format implements fmt.Formatter so no verb prints the token.
func (c *Client) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// LogValue implements slog.LogValuer without the token.
func (c *Client) LogValue() slog.Value { return slog.GroupValue(slog.String("base_url", c.baseURL)) }

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// call is one logical API call; it is replayed as is on retry.
type call struct {
	endpoint    string // stats and error key: "GET /sheets/{sheetId}"
	method      string
	path        string
	query       url.Values
	body        []byte // buffered so retries can replay it
	contentType string
	header      map[string]string
	class       limitClass
	writeSheet  int64 // non-zero: serialise with other writes to this sheet
	// noReplay: a failure that may have been applied is returned as an
	// *AmbiguousError instead of being retried (see AddRowsOptions.NoReplay).
	noReplay bool
}

func (c *Client) newJSONCall(endpoint, method, path string, body any) (*call, error) {
	rq := &call{endpoint: endpoint, method: method, path: path}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("smartsheet: %s: encode body: %w", endpoint, err)
		}
		rq.body = b
		rq.contentType = "application/json"
	}
	return rq, nil
}

// doJSON encodes body, runs the call and decodes the answer into out.
func (c *Client) doJSON(ctx context.Context, endpoint, method, path string, query url.Values, body, out any, writeSheet int64) error {
	rq, err := c.newJSONCall(endpoint, method, path, body)
	if err != nil {
		return err
	}
	rq.query = query
	rq.writeSheet = writeSheet
	return c.do(ctx, rq, out)
}

// do runs rq with rate limiting, per-sheet write serialisation and retries,
// and decodes a 2xx JSON answer into out (unless out is nil).
func (c *Client) do(ctx context.Context, rq *call, out any) error {
	if rq.writeSheet != 0 {
		unlock, err := c.locks.lock(ctx, rq.writeSheet)
		if err != nil {
			return fmt.Errorf("smartsheet: %s: wait for sheet write lock: %w", rq.endpoint, err)
		}
		defer unlock()
	}
	start := c.now()
	var last error
	for attempt := 1; ; attempt++ {
		if err := c.waitLimiter(ctx, rq); err != nil {
			return c.stopped(rq, attempt-1, start, last, err)
		}
		c.stats.request(rq.endpoint, rq.class)
		class, retryAfter, err := c.attempt(ctx, rq, out)
		if err == nil {
			return nil
		}
		if rq.noReplay && mayHaveApplied(err) {
			// Checked before the context: a deadline that cut the answer off
			// leaves the write just as uncertain.
			return &AmbiguousError{Endpoint: rq.endpoint, Err: err}
		}
		if ctx.Err() != nil {
			if last == nil && class == retryTransport {
				return fmt.Errorf("smartsheet: %s: %w", rq.endpoint, ctx.Err())
			}
			return c.stopped(rq, attempt, start, err, ctx.Err())
		}
		last = err
		if class == retryNone {
			return err
		}
		if class == retryRateLimit {
			c.stats.throttled()
		}
		delay := retryAfter
		if delay <= 0 {
			delay = backoffFor(class, attempt, c.jitter())
		}
		elapsed := c.now().Sub(start)
		remaining := c.budget - elapsed
		if remaining <= 0 || retryAfter > remaining {
			return &RetryError{Endpoint: rq.endpoint, Attempts: attempt, Elapsed: elapsed, Budget: c.budget,
				Reason: "retry budget exhausted", Last: last}
		}
		delay = min(delay, remaining)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < delay {
			return &RetryError{Endpoint: rq.endpoint, Attempts: attempt, Elapsed: elapsed, Budget: c.budget,
				Reason: "context deadline comes before the next attempt", Last: last, Cause: context.DeadlineExceeded}
		}
		c.logRetry(ctx, rq, attempt, delay, last)
		c.stats.retry(delay)
		if err := c.sleep(ctx, delay); err != nil {
			return c.stopped(rq, attempt, start, last, err)
		}
	}
}

// stopped reports a call stopped by its context (cancellation or deadline).
func (c *Client) stopped(rq *call, attempts int, start time.Time, last, cause error) error {
	if last == nil {
		return fmt.Errorf("smartsheet: %s: %w", rq.endpoint, cause)
	}
	return &RetryError{Endpoint: rq.endpoint, Attempts: attempts, Elapsed: c.now().Sub(start), Budget: c.budget,
		Reason: "context done", Last: last, Cause: cause}
}

func (c *Client) logRetry(ctx context.Context, rq *call, attempt int, delay time.Duration, err error) {
	attrs := []slog.Attr{
		slog.String("endpoint", rq.endpoint),
		slog.Int("attempt", attempt),
		slog.Duration("delay", delay),
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		attrs = append(attrs, slog.Int("status", apiErr.StatusCode), slog.Int("error_code", apiErr.ErrorCode),
			slog.String("ref_id", apiErr.RefID))
	} else {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	c.log.LogAttrs(ctx, slog.LevelWarn, "smartsheet: retrying", attrs...)
}

// waitLimiter takes a slot of the rate limiter, sleeping until it is due.
func (c *Client) waitLimiter(ctx context.Context, rq *call) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var deadline time.Time
		if dl, ok := ctx.Deadline(); ok {
			// The limiter works on c.now; translate the real deadline to it.
			deadline = c.now().Add(time.Until(dl))
		}
		wait, reserved, err := c.limiter.Reserve(ctx, Reservation{History: rq.class == limitHistory, Now: c.now(), Deadline: deadline})
		if err != nil {
			return err
		}
		if wait > 0 {
			c.stats.limiterWait(wait)
			if err := c.sleep(ctx, wait); err != nil {
				return err
			}
		}
		if reserved {
			return nil
		}
	}
}

// attempt sends rq once. It returns the retry class of a failure and the
// server's Retry-After, if any.
func (c *Client) attempt(ctx context.Context, rq *call, out any) (retryClass, time.Duration, error) {
	u := c.baseURL + rq.path
	if len(rq.query) > 0 {
		u += "?" + rq.query.Encode()
	}
	var body io.Reader
	if rq.body != nil {
		body = bytes.NewReader(rq.body)
	}
	req, err := http.NewRequestWithContext(ctx, rq.method, u, body)
	if err != nil {
		return retryNone, 0, fmt.Errorf("smartsheet: %s: build request: %w", rq.endpoint, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token.v)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if rq.contentType != "" {
		req.Header.Set("Content-Type", rq.contentType)
	}
	for k, v := range rq.header {
		req.Header.Set(k, v)
	}
	if rq.method != http.MethodGet && c.changeAgent != "" {
		req.Header.Set("Smartsheet-Change-Agent", c.changeAgent)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return retryTransport, 0, &TransportError{Endpoint: rq.endpoint, Err: scrubURLError(err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		apiErr := readAPIError(resp, rq.endpoint)
		cls := classify(apiErr)
		if cls == retryNone && rq.method == http.MethodGet && apiErr.StatusCode == http.StatusInternalServerError && apiErr.ErrorCode == 0 {
			// A bare 500 (no Smartsheet errorCode: a gateway's, most often)
			// to a read: sending a read again changes nothing, so it is
			// retried like a 502. A write's stays final (it may have been
			// applied; see mayHaveApplied).
			cls = retryServer
		}
		return cls, parseRetryAfter(resp.Header.Get("Retry-After"), c.now()), apiErr
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBodyBytes))
		return retryNone, 0, nil
	}
	data, err := readBody(resp)
	if err != nil {
		return retryTransport, 0, &TransportError{Endpoint: rq.endpoint, Err: fmt.Errorf("read response: %w", err)}
	}
	if fd, ok := out.(fastDecoder); ok {
		err = fd.decodeJSON(data)
	} else {
		err = json.Unmarshal(data, out)
	}
	if err != nil {
		return retryNone, 0, &decodeError{Endpoint: rq.endpoint, Err: err}
	}
	return retryNone, 0, nil
}

func readBody(resp *http.Response) ([]byte, error) {
	var buf bytes.Buffer
	if n := resp.ContentLength; n > 0 && n < maxResponseBytes {
		buf.Grow(int(n) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(io.LimitReader(resp.Body, maxResponseBytes))
	return buf.Bytes(), err
}

// scrubURLError keeps the operation and cause of a transport error but drops
// the query string of the URL (which may hold row ids; never the token, which
// only travels in a header).
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		u, perr := url.Parse(ue.URL)
		if perr == nil {
			u.RawQuery = ""
			return &url.Error{Op: ue.Op, URL: u.String(), Err: ue.Err}
		}
	}
	return err
}
