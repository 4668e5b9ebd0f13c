package group

import "context"

// Result is the answer to a group request: ready when the request
// returns, or later, when the group operation it waits for completes (the
// end of a join phase, the leader's assignment, a commit being
// replicated). The request's side effects have all happened when the
// method that returned the Result returns, so the broker calls these
// methods on the connection's reader goroutine, in request order, and
// waits for the Result on its writer goroutine.
type Result[T any] struct {
	done bool
	v    T
	ch   <-chan T
}

func resultOf[T any](v T) *Result[T] { return &Result[T]{done: true, v: v} }

// resultFrom is a Result that arrives on ch (which has room for it, so the
// sender never blocks).
func resultFrom[T any](ch <-chan T) *Result[T] { return &Result[T]{ch: ch} }

// Ready returns the answer if it is already there.
func (r *Result[T]) Ready() (T, bool) {
	if !r.done {
		select {
		case v := <-r.ch:
			r.v, r.done = v, true
		default:
		}
	}
	return r.v, r.done
}

// Wait blocks until the answer is there or ctx ends (the connection
// closed). A request whose connection closed still completes in the group:
// as on Kafka, its answer is simply never read.
func (r *Result[T]) Wait(ctx context.Context) (T, error) {
	if v, ok := r.Ready(); ok {
		return v, nil
	}
	select {
	case v := <-r.ch:
		r.v, r.done = v, true
		return v, nil
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}
