package lambdaapp

import (
	"context"
	"io"
	"log/slog"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// NewLogger is the functions' one logger: JSON lines on w at level, each
// carrying the invocation's request id (lambdacontext.FromContext, so log
// with ctx) and Lambda's key names (lambdacontext.ReplaceAttr: timestamp,
// message). The level is LOG_LEVEL (config.Function.LogLevel).
//
// It is not lambdacontext.NewLogHandler itself: that one takes its level only
// from AWS_LAMBDA_LOG_LEVEL and writes text unless AWS_LAMBDA_LOG_FORMAT is
// JSON, both read once at package init. The runtime emulator sets neither,
// and the alarms' metric filters ({ $.alert = ... }) and the end-to-end tests
// need JSON wherever the function runs.
func NewLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(requestIDHandler{slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: level, ReplaceAttr: lambdacontext.ReplaceAttr,
	})})
}

// requestIDHandler adds the request id of the invocation in ctx. Under a
// WithGroup the id lands inside the group, as with lambdacontext's handler;
// the functions log without groups.
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		r.AddAttrs(slog.String("requestId", lc.AwsRequestID))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(a)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}
