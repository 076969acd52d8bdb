// Package dynamo is the DynamoDB adapter of pipeline.Store: the cloud store
// of baselines, change records, scan watermarks, run records, settings, and
// the fan-in counter that tells the serverless chain when every batch of a
// run is done.
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
//	what           pk                 sk                  gsi1pk              gsi1sk                  other
//	sheet state    SHEET#<id>         STATE               -                   -                       data (JSON SheetState)
//	baseline       SHEET#<id>         ROW#<row id, %020d> -                   -                       data (JSON Baseline)
//	change         CHANGE#<id>        CHANGE              PENDING             <recordedAt>#<id>       data (JSON Change), recordedAt, written, dpk, dsk, ttl
//	  once written                                        DETECTED#<YYYY-MM>  <detectedAt>#<id>       + seq, hash (its ledger entry), auditRowId
//	ledger entry   LEDGER             SEQ#<seq, %020d>    -                   -                       data (audit.EncodeEntry), no ttl
//	lease          LEASE              <name>              -                   -                       holder, expiresAt (epoch ms)
//	change months  INDEX              CHANGE_MONTHS       -                   -                       months (SS of YYYY-MM)
//	run record     RUN#<id>           RUN                 RUNS                <startedAt>#<id>        data (JSON RunRecord)
//	fan-in counter RUN#<id>           FANIN               -                   -                       expected, done, sealedAt, completedAt, completedBy
//	batch marker   RUN#<id>           BATCH#<batch id>    -                   -                       doneAt, ttl
//	setting        META               <key>               -                   -                       value
//
// Times in sort keys are UTC in a fixed-width form (2006-01-02T15:04:05.000000000Z)
// so that string order is time order. Row ids are zero-padded to 20 digits
// for the same reason.
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
// # Retention
//
// Change items (and fan-in batch markers) carry ttl = recording time +
// Options.Retention when Retention > 0, so DynamoDB deletes them after it;
// baselines, sheet states, runs and settings never expire. [DefaultRetention]
// is the default of the configuration (400 days); 0 keeps everything.
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
package dynamo
