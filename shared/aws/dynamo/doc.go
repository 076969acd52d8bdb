// Package dynamo is the DynamoDB adapter of pipeline.Store: the cloud store
// of baselines, change records, scan watermarks, the audit ledger and its
// leases, run records, settings, the fan-in counter that tells the serverless
// chain when every batch of a run is done, the webhook receiver's nonces
// and attribution records, and the Smartsheet rate budget the functions
// share (RateBudget).
//
// # Table
//
// One table (AUDIT_TABLE, created by template.yaml; [CreateTable] makes the
// same one for the local emulators): on-demand, key pk (S, HASH) + sk (S,
// RANGE), one global secondary index gsi1 on gsi1pk (S, HASH) + gsi1sk (S,
// RANGE) projecting ALL, and TTL on the number attribute ttl (epoch seconds).
// The Store never scans: every read is a GetItem, a BatchGetItem or a Query.
//
// # Items
//
// This is the whole schema: every item type the package reads or writes, in
// one place (keys.go builds the keys in the same order). Keys:
//
//	what                pk                      sk                               gsi1pk              gsi1sk
//	sheet state         SHEET#<sheet id>        STATE                            -                   -
//	baseline            SHEET#<sheet id>        ROW#<row id, %020d>              -                   -
//	change              CHANGE#<change id>      CHANGE                           PENDING             <recordedAt>#<change id>
//	  once written                                                               DETECTED#<YYYY-MM>  <detectedAt>#<change id>
//	alert marker        CHANGE#<change id>      ALERT#<channel>                  -                   -
//	change months       INDEX                   CHANGE_MONTHS                    -                   -
//	ledger entry        LEDGER                  SEQ#<seq, %020d>                 -                   -
//	lease               LEASE                   <lease name>                     -                   -
//	run record          RUN#<run id>            RUN                              RUNS                <startedAt>#<run id>
//	fan-in counter      RUN#<run id>            FANIN                            -                   -
//	batch marker        RUN#<run id>            BATCH#<batch id>                 -                   -
//	sheet result        RUN#<run id>            SHEET#<sheet id, %020d>          -                   -
//	setting             META                    <key>                            -                   -
//	callback nonce      NONCE#<nonce>           NONCE                            -                   -
//	attribution record  WH#<sheet id>#<row id>  <column id, %020d>#<time>#<user id>#<event type>
//	newest record time  WH#<sheet id>           NEWEST                           -                   -
//	webhook status      WEBHOOK#<webhook id>    STATUS                           -                   -
//	rate budget         BUDGET#<token hash>     RATE                             -                   -
//
// Attributes, expiry, and who writes and reads each item. "Scan", "analyze",
// "report" and "webhook" are the Lambda functions (functions/…); "the audit-log
// writer" is any invocation that seals changes into the ledger and appends
// them to the audit sheet (pipeline's publish, under the audit-log lease):
// analyze after a batch or a webhook refresh with fresh changes, and the
// invocation that completes a run (analyze, or scan for a run with no batch). The operator
// CLI keeps the same data in its local bbolt store (shared/bolt), not here.
//
//   - sheet state: data (JSON pipeline.SheetState: name, version, last scan,
//     row count, the columns a scan fetches, the webhook's subscope). No ttl.
//     Written by analyze (the sheet worker: Commit with a State, last, once
//     every page of the sheet is analysed, which counts the baselines) and by
//     scan for a sheet found unchanged (SaveSheetState: one PutItem, the new
//     watermark, no count). Read by scan (one GetItem per sheet: its version
//     to check; webhook targets) and analyze (the sheet worker's query; the
//     refresh window of RefreshRows).
//   - baseline: data (JSON audit.Baseline: the row's tracked values, week
//     ending and generation as last seen). No ttl. Put and deleted by analyze (Commit, BatchWriteItem).
//     Read by analyze (Baselines: BatchGetItem of a page's rows;
//     BaselineRowIDs: keys-only Query, only when the sheet holds fewer rows
//     than its baselines and the new rows seen — rows may be gone) and
//     counted by Commit (COUNT Query) for the state's row count.
//   - change: data (JSON audit.Change), recordedAt and detectedAt (S,
//     sort-time form), written (BOOL), dpk and dsk (the gsi1 key it moves to
//     once written), recordedBy (a token of the put that recorded it, so a
//     retried put whose first answer was lost still counts as new), ttl
//     (recording time + Options.Retention, when > 0); once sealed seq (N) and
//     hash (S), its ledger entry; once written auditRowId (N), its row on the
//     audit sheet. Recorded by analyze (Commit: conditional PutItem, never
//     overwritten). Sealed (MarkSealed) and moved to its month (MarkWritten)
//     by the audit-log writer. Read by the audit-log writer (Pending,
//     ChangeRecords), by the completing invocation (Changes: the run's
//     counts) and by report (Changes: the period and trend; ChangeRecords and
//     Changes while verifying the audit log).
//   - alert marker: sentAt (S, sort-time form), ttl (sentAt +
//     Options.Retention, when > 0). One per change and alert channel
//     ("slack", "teams", "sns"): that channel delivered the change's alert,
//     so it is never alerted there again. Put (MarkAlertsSent: a
//     conditional PutItem per change, the first kept) by whichever
//     invocation sends alerts — analyze, at the end of a run it completes
//     and after a webhook refresh, under the "alerts" lease — only once the
//     channel accepted the alert, so one that failed is sent again by the
//     next run. Read by the same (AlertsSent: BatchGetItem).
//   - change months: months (SS of YYYY-MM). No ttl. ADDed to by analyze
//     before the changes of a Commit are put; read by Changes.
//   - ledger entry: data (audit.EncodeEntry). No ttl: the ledger lives as
//     long as the table. Appended by the audit-log writer (AppendLedger).
//     Read by the audit-log writer (LedgerHead, LedgerEntries,
//     LedgerEntriesBySeq) and by report (LedgerEntries, LedgerEntriesBySeq:
//     verification before it signs the run's digest).
//   - lease: holder (S), expiresAt (N, epoch ms of the store's clock;
//     released = 0). No ttl: a lease item is reused by its next holder. Names
//     (pipeline): "audit-log" (10 minutes), held by the audit-log writer and
//     by report while it verifies; "sheet-commit:<sheet id>" (2 minutes),
//     held by analyze while it analyses and commits a page of that sheet,
//     renewed after attribution, before the commit; "alerts" (the alert
//     timeout + 30 s), held by whichever invocation sends alerts.
//   - run record: data (JSON pipeline.RunRecord). No ttl. Put by scan when the
//     run starts and again once its changed sheets are queued, and by the
//     completing invocation with the run's counts. Read by analyze (Run: only
//     sheets of a recorded run, which it names, are scanned), by the
//     completing invocation, and by report (Run, or Runs for the newest).
//   - fan-in counter: expected (N, the sealed count: one per queued sheet), done (N),
//     sealedAt, completedAt, completedBy (the batch id or "seal" whose call
//     claimed the completion), leaseUntil (the claim's lease) and finishedAt
//     (S, sort-time form). No ttl. Seal by scan, BatchDone by analyze, the
//     claim by both, Finish by the completing invocation; RunProgress reads
//     it (fanin.go explains the protocol).
//   - batch marker: doneAt (S), ttl (as a change's). Put by analyze in
//     BatchDone's transaction ("sheet/<sheet id>"), only as a condition: a
//     sheet counts once. Never read.
//   - sheet result: data (JSON pipeline.SheetResult: rows, pages, changes,
//     findings, why the sheet could not be read), ttl (as a change's). Put
//     by analyze when its sheet is done (a conditional PutItem: the first is
//     kept); read by the completing invocation (one Query of the run's
//     partition) for the run's counts and findings.
//   - setting: value (S; JSON for most keys). No ttl. Keys, written and read
//     by (their constants are in shared/pipeline):
//     "ledger-synced" (the last ledger entry known to be noted on its change),
//     "audit-write-in-flight" (Change IDs of a write that may have reached the
//     sheet unmarked), "ledger-adoption-entry" and "audit-columns:<sheet id>"
//     (the audit sheet's column ids): the audit-log writer;
//     "sheet-checkpoint:<sheet id>" (JSON: where a sheet's scan stands — its
//     query, next page and counts; "" once the sheet is done): analyze (the
//     sheet worker), read only when it resumes (a continuation, a retry, or a
//     first scan);
//     "attestation:<run id>", "digest-checkpoint", "publication" and
//     "audit-summary:<sheet id>" (the audit sheet's summary field ids):
//     report. "audit-sheet-id" exists only in the CLI's store. One key is
//     not a META item: "webhook-status/<webhook id>" is the webhook status
//     item below (Meta and PutMeta map it), so that the webhook function
//     writes no setting.
//   - callback nonce: ttl (seen + WebhookOptions.NonceTTL, default 2 hours,
//     well past the receiver's 15-minute skew). Put by webhook (Seen: a
//     conditional put that refuses a replay) and deleted by it (Forget) when
//     keeping the callback failed, so Smartsheet's retry is accepted.
//     Read only by that condition.
//   - attribution record: data (JSON webhook.Record), ttl (stored +
//     WebhookOptions.RecordTTL, default 35 days). Put by webhook
//     (PutRecords, BatchWriteItem). Read by analyze (Records: one Query per
//     cell, in time order) to attribute a change, for scan batches and
//     refreshes alike.
//   - newest record time: newest (N, unix nanos), only ever raised. No ttl.
//     Raised by webhook before the records are put, so a lookup never misses
//     a stored record; read by analyze (NewestRecord), which skips the record
//     lookups of a sheet with no record after a change's window start.
//   - webhook status: value (S: JSON pipeline.WebhookStatus, the last status
//     callback of that webhook). No ttl. Put by webhook (PutMeta of
//     pipeline.WebhookStatusKey); read by LastWebhookStatus (the CLI's
//     `webhooks` command, on its own store). It used to be META /
//     webhook-status/<webhook id>; such an old item is left unread.
//   - rate budget: general and history (N, each token bucket's tat in Unix
//     nanoseconds, see The Smartsheet rate budget below), ttl (last update +
//     24 hours). One item per Smartsheet token, keyed by the first 128 bits of
//     a SHA-256 of the token (domain-separated), never the token itself.
//     Updated by scan, analyze and report before each Smartsheet request
//     (RateBudget.Reserve: one conditional UpdateItem, returning the item);
//     read (GetItem) only after a lost race, where the failed condition did
//     not return the item.
//
// Times in sort keys are UTC in a fixed-width form (2006-01-02T15:04:05.000000000Z)
// so that string order is time order. Row ids, ledger sequence numbers and
// column ids are zero-padded to 20 digits for the same reason. An attribution
// record's sort key starts with its column and then its time, so the records
// of one cell are one Query in time order; the user and event type make a
// record stored twice (a retried callback) one item.
//
// # The one index, three uses
//
// A change item has one gsi1pk at a time. While it is not yet on the audit
// sheet it sits in the PENDING partition, ordered by recording time: Pending
// is one Query. MarkWritten moves it, in one UpdateItem, to the partition of
// the month it was detected in (SET gsi1pk = dpk, gsi1sk = dsk: both were
// computed when it was recorded). Changes(from, to) therefore queries the
// month partitions that overlap [from, to) with a key condition on gsi1sk
// (the detection time), plus the PENDING partition filtered on detectedAt.
// Which months exist is kept in the INDEX/CHANGE_MONTHS string set, added to
// before the changes of a Commit are written, so an open-ended range asks
// only months that have changes. PENDING stays small (it is emptied by every
// run that reaches the audit sheet), so the filtered part costs little. Runs
// share the RUNS partition, newest first by start time.
//
// The index is eventually consistent: a change recorded a moment ago may be
// missing from Pending or Changes for a short while (the table reads —
// SheetState, Baselines, Meta — are strongly consistent). The pipeline writes
// pending changes at the end of a run, and one missed now is written by the
// next run.
//
// # The ledger
//
// Ledger entries are appended with one conditional PutItem each
// (attribute_not_exists on the sequence number), after checking that the
// entry before the first is there with the hash it names; they are read in
// order with strongly consistent Queries on LEDGER. They have no ttl: the
// ledger lives as long as the table. Writers of the audit log take the
// audit-log lease first (a conditional PutItem on LEASE/audit-log), so one
// writer extends the chain at a time (see shared/pipeline/ledger.go).
//
// # What the webhook function may write
//
// The webhook function answers the internet, so its role (template.yaml's
// WebhookRole) may write only the partitions whose keys start with one of
// [WebhookKeyPrefixes] — nonces, attribution records, newest record times and
// webhook statuses — and reads nothing: a forged callback or a flaw in its
// handler cannot touch baselines, changes, runs, settings or the ledger.
//
// # Retention
//
// Change items (and fan-in batch markers) carry ttl = recording time +
// Options.Retention when Retention > 0, so DynamoDB deletes them after it;
// [DefaultRetention] is the default of the configuration (400 days); 0 keeps
// everything. Nonces and attribution records expire by their own
// WebhookOptions, rate budgets a day after their last use (by then the
// bucket is full: an expired item is an unused one). Everything else
// (baselines, sheet states, the ledger, leases, runs, fan-in counters,
// settings, newest record times, webhook statuses) never expires.
//
// # Commit order
//
// DynamoDB has no transaction wide enough for a whole sheet (100 items), so a
// Commit is written in an order that is safe to interrupt at any point:
//
//  1. change records, each a conditional PutItem (attribute_not_exists(pk)),
//     several in flight at once; one that exists is "already recorded", not
//     an error, and is left untouched (no transaction: each change stands
//     alone, and a transaction would double the write units);
//  2. baselines, put and deleted by BatchWriteItem in chunks of 25;
//  3. the sheet state (version, last scan, row count).
//
// A crash after 1 leaves the old baselines, so the next scan detects the
// same changes again, with the same Change IDs (they depend only on what
// changed), and step 1 finds them already recorded: nothing is lost nor
// doubled, and they stay pending until written. Had baselines gone first, a
// crash before the changes would have made the next scan compare against the
// new values and lose the change. The state goes last because its version and
// last-scan time let a scan skip a sheet: it must not claim a scan whose
// baselines are not all stored.
//
// # The Smartsheet rate budget
//
// Smartsheet limits a token to N requests (300) and M cell-history requests
// (30) in any sliding minute, whichever process sends them. Every Lambda
// function that calls Smartsheet therefore draws on one budget per token,
// kept in one item of the audit table (BUDGET#<token hash> / RATE, see
// Items), instead of each process's in-memory limiter, which knows only its
// own calls: up to seven invocations run at once (template.yaml: Scan 1,
// Analyze 4, Report 2, held by each function's ReservedConcurrentExecutions).
//
// Each budget is a token bucket of capacity C refilled at r tokens per
// second, kept as GCRA's "theoretical arrival time" (tat): the time at which
// the bucket would be full again, one Unix-nanosecond number per bucket. A
// request at now takes a token iff tat <= now + (C-1)·T, where T = 1/r, and
// then tat becomes max(tat, now) + T. That is two cases, each one
// conditional UpdateItem with no read before it:
//
//	idle (tat < now):        condition attribute_not_exists(tat) OR tat < :now   SET tat = :now + T
//	busy (tat >= now):       condition tat BETWEEN :now AND :now+(C-1)T+ahead     SET tat = tat + T
//
// DynamoDB applies each update atomically, so however many processes race,
// every admitted request satisfied the condition on the item as it was: the
// budget is never exceeded. Busy updates commute (every racer adds T), so
// under load they do not conflict; a racer whose guess of the case was wrong
// (idle turning busy) gets the item back with the failed condition and tries
// the right case at once. tat only ever grows, so the highest value a
// process has seen is a lower bound of the item's: a refusal computed from
// it needs no DynamoDB call.
//
// # The bound
//
// Number the admitted requests in the order DynamoDB applied them: request
// k goes at its slot s_k, and tat_k is the bucket after it. Each admission
// gives tat_k >= tat_(k-1) + T and s_k + T <= tat_k <= s_k + C·T. If n
// requests go within a span D, the first of them in that order has a tat at
// least the earliest send + T, the last one at most the latest send + C·T,
// and they are n-1 steps of T apart: n·T <= D + C·T, n <= C + D·r.
// Smartsheet counts the calls of a half-open minute, D < 60 s, so
// n < C + 60·r; with C + 60·r <= N no sliding minute holds more than N
// calls. The defaults are C = N/10 and r = (N-C)/60 s (N = 300: C = 30,
// r = 4.5/s; M = 30: C = 3, r = 0.45/s), T rounded up to the nanosecond: a
// burst of C lets an idle function start at once, and 90% of the budget is
// the steady rate. With C + 60·r = N exactly, the strict "<" leaves a slack
// of one T (222 ms; 2.2 s for cell history): requests that go up to T after
// their slots, or processes whose clocks differ by that much
// (NTP-synchronised on Lambda: milliseconds), still keep every window
// within N.
//
// Lateness is what the slack is for, so it is bounded: a request asks for a
// slot at the time its answer is expected (now + the recent round trip of
// its updates), sleeps from the answer until the slot, and drops a slot
// whose answer came more than T/2 late (DynamoDB slower than it was): that
// slot is lost, never used late, and another is taken.
//
// A request may reserve a slot up to Horizon ahead (busy case with ahead =
// Horizon): the process then sleeps until its slot, s_k = tat_k - C·T, which
// keeps the bound above, and queues in DynamoDB, first come first served,
// with one UpdateItem per request instead of polling. A reservation whose
// process dies is a slot lost, never one used twice. Beyond the horizon, or
// after the context's deadline, nothing is taken and the caller waits. No
// tokens are leased: leasing k tokens would be k reservations made at once,
// which keeps the bound only if each is sent at its own slot; about one
// UpdateItem per request (measured in BENCHMARKS.md) is cheap enough not to.
//
// A cell-history request draws on both budgets at one instant: the overall
// slot atG, once its own budget admits it there (otherwise it waits until
// the overall slot reaches its own, reading the item first so that it does
// not wait for a stale one). Both tats move as if it arrived at atG, which
// the busy and idle cases cannot express, so it swaps both with a condition
// on their exact values (tat = :was); a lost race brings the item back and
// it tries again. Cell-history requests are few, and taking both tokens at
// the overall slot never skips overall tokens nor holds one in the future
// for a request that cannot go then.
//
// When DynamoDB fails, the update is retried with jittered backoff and then
// Reserve returns an error naming the item and the step: the request fails,
// it never goes out unbudgeted. An update retried after its answer was lost
// may take a second slot: the budget errs on the safe side.
package dynamo
