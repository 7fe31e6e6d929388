package resolvers

import "fmt"

// InputError is a bad argument. The server reports it as BAD_USER_INPUT with
// the argument's path in extensions.argument, so a form can mark the field.
type InputError struct {
	Argument string // e.g. "input.name"
	Reason   string
}

func (e *InputError) Error() string { return fmt.Sprintf("invalid %s: %s", e.Argument, e.Reason) }

func badInput(argument, format string, args ...any) error {
	return &InputError{Argument: argument, Reason: fmt.Sprintf(format, args...)}
}
