package trillian

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/trillian"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// maxDisplayName is the longest display name Trillian's MySQL schema holds.
const maxDisplayName = 20

// CreateTree creates a Trillian log tree for a govlog log with the admin
// API of the trillian_log_server at adminAddr (host:port, no TLS):
// CreateTree for an active LOG tree, then InitLog, then it waits until the
// empty tree head can be read. It returns the new tree's ID, for
// Config.TreeID.
func CreateTree(ctx context.Context, adminAddr, displayName string) (int64, error) {
	conn, err := dial(adminAddr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	return createTree(ctx, conn, displayName)
}

func createTree(ctx context.Context, conn *grpc.ClientConn, displayName string) (int64, error) {
	if utf8.RuneCountInString(displayName) > maxDisplayName {
		return 0, fmt.Errorf("failed to create a Trillian tree: display name %q is longer than %d characters", displayName, maxDisplayName)
	}
	admin := trillian.NewTrillianAdminClient(conn)
	logs := trillian.NewTrillianLogClient(conn)
	var tree *trillian.Tree
	err := retry(ctx, func(ctx context.Context) error {
		var err error
		tree, err = admin.CreateTree(ctx, &trillian.CreateTreeRequest{Tree: &trillian.Tree{
			TreeState:   trillian.TreeState_ACTIVE,
			TreeType:    trillian.TreeType_LOG,
			DisplayName: displayName,
			Description: "govlog decision log",
			// No tree heads without new leaves: govlog signs only when
			// it appends.
			MaxRootDuration: durationpb.New(0),
		}})
		return err
	}, codes.Unavailable)
	if err != nil {
		return 0, fmt.Errorf("failed to create a Trillian tree: %w", err)
	}
	id := tree.GetTreeId()
	err = retry(ctx, func(ctx context.Context) error {
		_, err := logs.InitLog(ctx, &trillian.InitLogRequest{LogId: id})
		return err
	}, codes.Unavailable)
	if err != nil {
		return 0, fmt.Errorf("failed to initialise Trillian tree %d: %w", id, err)
	}
	err = retry(ctx, func(ctx context.Context) error {
		_, err := logs.GetLatestSignedLogRoot(ctx, &trillian.GetLatestSignedLogRootRequest{LogId: id})
		return err
	}, codes.Unavailable, codes.FailedPrecondition, codes.NotFound)
	if err != nil {
		return 0, fmt.Errorf("failed to read the tree head of new Trillian tree %d: %w", id, err)
	}
	return id, nil
}

// retry calls f (each call bounded to 10s) until it succeeds, fails with a
// code not in retryable, or ctx ends; it backs off from 50ms to 1s.
func retry(ctx context.Context, f func(context.Context) error, retryable ...codes.Code) error {
	delay := 50 * time.Millisecond
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := f(cctx)
		cancel()
		if err == nil {
			return nil
		}
		ok := false
		for _, c := range retryable {
			ok = ok || status.Code(err) == c
		}
		if !ok {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}
