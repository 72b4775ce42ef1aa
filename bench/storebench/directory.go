package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// directoryResult is what operating the directory costs at one size:
// the admin API's list pages and its export, which use
// AdminStore.SearchUsers as measured here.
type directoryResult struct {
	// page: the first pages of the unfiltered list, 100 users each, and
	// pageFiltered the same with status and connection filters (what
	// `caddy jit-users list --status active --connection …` asks).
	page, pageFiltered latencies
	// searchRare: one page of a search whose text matches one user
	// (the query reads the whole table: LIKE '%…%' uses no index);
	// searchCommon: one page of a search most users match.
	searchRare, searchCommon latencies
	// seenBefore: one page of users not seen since before the fill (the
	// inactive-user sweep's query); none match.
	seenBefore latencies
	// export: every user, in pages of 500 as the export streams them.
	exportRows int
	exportWall time.Duration
}

// directoryPages is how many list pages are timed.
const directoryPages = 200

func measureDirectory(ctx context.Context, st provisioner.AdminStore, n int) (*directoryResult, error) {
	r := &directoryResult{}
	pages := func(q provisioner.UserQuery, k int) (latencies, error) {
		var d []time.Duration
		start := time.Now()
		for range k {
			t := time.Now()
			page, err := st.SearchUsers(ctx, q)
			if err != nil {
				return latencies{}, err
			}
			d = append(d, time.Since(t))
			if len(page) < q.Limit {
				break
			}
			q.After = provisioner.NormalizeUsername(page[len(page)-1].Username)
		}
		return summarise(d, time.Since(start)), nil
	}
	repeat := func(q provisioner.UserQuery, k int) (latencies, error) {
		var d []time.Duration
		start := time.Now()
		for range k {
			t := time.Now()
			if _, err := st.SearchUsers(ctx, q); err != nil {
				return latencies{}, err
			}
			d = append(d, time.Since(t))
		}
		return summarise(d, time.Since(start)), nil
	}
	var err error
	if r.page, err = pages(provisioner.UserQuery{Limit: 100}, directoryPages); err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	if r.pageFiltered, err = pages(provisioner.UserQuery{Limit: 100, Status: provisioner.StatusActive, Connection: connection}, directoryPages); err != nil {
		return nil, fmt.Errorf("filtered list: %w", err)
	}
	rare := usernameFor(n / 2)
	if r.searchRare, err = repeat(provisioner.UserQuery{Limit: 100, Search: rare}, 5); err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	if r.searchCommon, err = repeat(provisioner.UserQuery{Limit: 100, Search: "example"}, 20); err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	if r.seenBefore, err = repeat(provisioner.UserQuery{Limit: 100, Connection: connection, Status: provisioner.StatusActive, SeenBefore: time.Now().Add(-24 * 365 * time.Hour)}, 5); err != nil {
		return nil, fmt.Errorf("seen_before: %w", err)
	}
	start := time.Now()
	q := provisioner.UserQuery{Limit: 500}
	for {
		page, err := st.SearchUsers(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
		r.exportRows += len(page)
		if len(page) < q.Limit {
			break
		}
		q.After = provisioner.NormalizeUsername(page[len(page)-1].Username)
	}
	r.exportWall = time.Since(start)
	return r, nil
}

func (r *directoryResult) String() string {
	return fmt.Sprintf(`list, 100 per page (first %d pages): %s
list --status active --connection (first %d pages): %s
search matching 1 user (scans to the end): %s
search matching most users: %s
users not seen in a year (the deprovision sweep's page; none match): %s
export: %s rows in %s (%.0f rows/s)`,
		directoryPages, r.page, directoryPages, r.pageFiltered, r.searchRare, r.searchCommon, r.seenBefore,
		count(r.exportRows), r.exportWall.Round(time.Millisecond), float64(r.exportRows)/r.exportWall.Seconds())
}

// statusRefreshResult is what the background status refresh of live
// sessions costs: re-reading the users of liveSessions sessions, in
// batches (provisioner.UserBatchReader, what the refresh does) and one
// user per query (what it did before, and still does for a store
// without the role), the latter timed on a sample and scaled.
type statusRefreshResult struct {
	live          int
	batchWall     time.Duration
	batch         latencies
	oneSample     int
	oneSampleWall time.Duration
}

// liveSessions is how many live sessions' users a status refresh reads.
const liveSessions = 100_000

func measureStatusRefresh(ctx context.Context, st provisioner.Store) (*statusRefreshResult, error) {
	b, ok := st.(provisioner.UserBatchReader)
	if !ok {
		return nil, nil
	}
	var ids []string
	q := provisioner.UserQuery{Limit: 500}
	for len(ids) < liveSessions {
		page, err := st.(provisioner.AdminStore).SearchUsers(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, u := range page {
			ids = append(ids, u.ID)
		}
		if len(page) < q.Limit {
			break
		}
		q.After = provisioner.NormalizeUsername(page[len(page)-1].Username)
	}
	if len(ids) > liveSessions {
		ids = ids[:liveSessions]
	}
	r := &statusRefreshResult{live: len(ids)}
	var d []time.Duration
	start := time.Now()
	for rest := ids; len(rest) > 0; {
		n := min(len(rest), provisioner.MaxUsersByID)
		t := time.Now()
		users, err := b.UsersByID(ctx, rest[:n])
		if err != nil {
			return nil, err
		}
		if len(users) != n {
			return nil, fmt.Errorf("UsersByID: %d users for %d IDs", len(users), n)
		}
		d = append(d, time.Since(t))
		rest = rest[n:]
	}
	r.batchWall = time.Since(start)
	r.batch = summarise(d, r.batchWall)
	r.oneSample = min(len(ids), 10_000)
	start = time.Now()
	for _, id := range ids[:r.oneSample] {
		if _, err := st.User(ctx, id); err != nil {
			return nil, err
		}
	}
	r.oneSampleWall = time.Since(start)
	return r, nil
}

func (r *statusRefreshResult) String() string {
	if r == nil {
		return "status refresh: the store does not read users in batches"
	}
	perUser := r.oneSampleWall / time.Duration(r.oneSample)
	return fmt.Sprintf(`status refresh of %s live sessions' users: %s in batches of %d (%d queries; per query %s)
  one user per query instead: %s per user on %s users, so %s for %s (%.0fx the batched refresh)`,
		count(r.live), r.batchWall.Round(time.Millisecond), provisioner.MaxUsersByID, r.batch.n, r.batch,
		perUser.Round(time.Microsecond), count(r.oneSample), (perUser * time.Duration(r.live)).Round(time.Millisecond), count(r.live),
		float64(perUser*time.Duration(r.live))/float64(r.batchWall))
}
