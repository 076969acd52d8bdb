package dynamo

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/webhook"
)

// Every key of the audit table is built here, in the order of the item table
// of the package doc (doc.go): a new item type or key shape goes in both
// places, so the doc stays the one schema to read.

const (
	indexName    = "gsi1"
	sortTimeForm = "2006-01-02T15:04:05.000000000Z"
	monthForm    = "2006-01"

	// Write and read limits of DynamoDB's batch operations.
	maxBatchWrite = 25
	maxBatchGet   = 100
)

// sortTime is t in UTC in a fixed-width form, so that string order is time
// order in sort keys.
func sortTime(t time.Time) string { return t.UTC().Format(sortTimeForm) }

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}}
}

// Sheet state and baselines: SHEET#<id> / STATE and SHEET#<id> / ROW#<row id>.
const (
	skState   = "STATE"
	rowPrefix = "ROW#"
)

func sheetPK(id int64) string { return "SHEET#" + strconv.FormatInt(id, 10) }

// rowSK zero-pads the row id to 20 digits, so that string order is id order.
func rowSK(id int64) string { return fmt.Sprintf("%s%020d", rowPrefix, id) }

// Changes: CHANGE#<id> / CHANGE, in the index under PENDING until written,
// then under DETECTED#<YYYY-MM>; the months are listed in INDEX /
// CHANGE_MONTHS.
const (
	skChange   = "CHANGE"
	gsiPending = "PENDING"
	pkIndex    = "INDEX"
	skMonths   = "CHANGE_MONTHS"
)

func changePK(id string) string { return "CHANGE#" + id }

// Alert markers: CHANGE#<change id> / ALERT#<channel>, beside the change.
const alertPrefix = "ALERT#"

func alertSK(channel string) string { return alertPrefix + channel }

func monthPK(month string) string { return "DETECTED#" + month }

// Ledger entries (LEDGER / SEQ#<seq>) and leases (LEASE / <name>).
const (
	pkLedger     = "LEDGER"
	ledgerPrefix = "SEQ#"
	pkLease      = "LEASE"
)

// ledgerSK zero-pads seq to 20 digits, so that string order is ledger order.
func ledgerSK(seq uint64) string { return fmt.Sprintf("%s%020d", ledgerPrefix, seq) }

// Runs: the record RUN#<id> / RUN (in the index under RUNS), the fan-in
// counter RUN#<id> / FANIN, the batch markers RUN#<id> / BATCH#<batch id>
// and the sheet results RUN#<id> / SHEET#<sheet id, %020d>.
const (
	skRun             = "RUN"
	gsiRuns           = "RUNS"
	skFanIn           = "FANIN"
	batchPrefix       = "BATCH#"
	sheetResultPrefix = "SHEET#"
)

func runPK(id string) string { return "RUN#" + id }

func sheetResultSK(sheetID int64) string { return fmt.Sprintf("%s%020d", sheetResultPrefix, sheetID) }

// Settings: META / <key>, except each webhook's last status
// (pipeline.WebhookStatusKey), which is WEBHOOK#<webhook id> / STATUS: the
// webhook function records it, and may write no META item (see
// WebhookKeyPrefixes).
const (
	pkMeta          = "META"
	skWebhookStatus = "STATUS"
)

func metaKey(k string) map[string]types.AttributeValue {
	if id, ok := strings.CutPrefix(k, pipeline.WebhookStatusKeyPrefix); ok {
		return key("WEBHOOK#"+id, skWebhookStatus)
	}
	return key(pkMeta, k)
}

// Webhook items: nonces (NONCE#<nonce> / NONCE), attribution records
// (WH#<sheet>#<row> / <column>#<time>#<user>#<event>) and each sheet's newest
// record time (WH#<sheet> / NEWEST); each webhook's last status is with the
// settings (metaKey).
const (
	skNonce  = "NONCE"
	skNewest = "NEWEST"
)

// WebhookKeyPrefixes returns the partition-key prefixes of every item the
// webhook function writes: nonces, attribution records, newest record times
// and webhook statuses. It is internet-facing, so template.yaml's WebhookRole
// allows it DynamoDB writes on these partitions only (dynamodb:LeadingKeys),
// never on baselines, changes, runs, settings or the ledger. Tests hold the
// three together: a new item the webhook writes needs its prefix here and in
// the template.
func WebhookKeyPrefixes() []string { return []string{"NONCE#", "WH#", "WEBHOOK#"} }

func noncePK(nonce string) string { return "NONCE#" + nonce }

func recordPK(sheetID, rowID int64) string {
	return "WH#" + strconv.FormatInt(sheetID, 10) + "#" + strconv.FormatInt(rowID, 10)
}

func newestPK(sheetID int64) string { return "WH#" + strconv.FormatInt(sheetID, 10) }

// recordColumn is the sort-key prefix of a cell's records: the column first,
// so one cell's records are one key range.
func recordColumn(columnID int64) string { return fmt.Sprintf("%020d#", columnID) }

// recordSK orders a cell's records by time; the user and event make a record
// stored twice (a retried callback) one item.
func recordSK(r webhook.Record) string {
	return recordColumn(r.ColumnID) + sortTime(r.Time) + "#" + strconv.FormatInt(r.UserID, 10) + "#" + r.EventType
}

// Rate budgets: BUDGET#<token hash> / RATE, one item per Smartsheet token.
const skBudget = "RATE"

// budgetPK names a token's budget by a hash of the token, never the token:
// the table's readers (and its backups) must not learn it. SHA-256 of a
// high-entropy API token cannot be reversed; the prefix keeps the hash apart
// from any other use of the same token, and 128 bits are plenty to keep two
// tokens' items apart.
func budgetPK(token string) string {
	sum := sha256.Sum256([]byte("billing-audit/smartsheet-rate-budget\x00" + token))
	return "BUDGET#" + hex.EncodeToString(sum[:16])
}
