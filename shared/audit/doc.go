// Package audit is the billing-audit domain: it maps sheet columns to the
// fields the audit knows, parses money, quantities and dates, derives a row's
// week ending, compares rows with their stored baselines, values each change,
// and decides whether it was made after its week had closed.
//
// It takes plain values and returns plain values. It imports no Smartsheet
// client, no AWS SDK, no HTTP and no spreadsheet library: adapters translate
// their data into [ColumnInfo], [RowSnapshot] and [Baseline], and implement
// the [Attributor] port to say who made a change and when.
//
// A scan of one sheet goes:
//
//	m, findings := cfg.MapColumns(sheetID, name, columns)      // per sheet
//	d := audit.NewDetector(cfg, m, runID)
//	for each row: changes, f := d.Compare(baseline, snapshot, firstScan, window)
//	for each change: audit.AttributeChain(ctx, &c, attributors...); d.Classify(&c, window)
//
// The audit log of record is also domain: [LogFields] is what an audit row
// holds, [LedgerEntry] seals it into a hash chain ([NextEntry], [ChainCheck]),
// [Digest] is what is signed after each run ([VerifySignature] checks it with
// the public key alone), and [CompareRow] and [Verification] name every
// difference between the audit sheet and the ledger.
//
// Money is decimal.Decimal throughout. Times are UTC; calendar dates (a week
// ending, a snapshot date) are midnight UTC of that date, and the audit
// timezone ([Config.Location]) only decides when a week-ending day ends.
package audit
