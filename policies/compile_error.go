package policies

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// CompileError is returned when a bundle cannot become an Engine: a parse or
// strict-compile error, a broken data.json, or a missing data.herald.decision.
// Each problem carries the file and line a compliance officer must fix.
type CompileError struct {
	Problems []Problem
}

// Problem is one compiler finding. Line is 0 when it concerns the whole bundle.
type Problem struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Message string `json:"message"`
}

func (e *CompileError) Error() string {
	var sb strings.Builder
	sb.WriteString("policy bundle does not compile:")
	for _, p := range e.Problems {
		sb.WriteString("\n  ")
		sb.WriteString(p.String())
	}
	return sb.String()
}

func (p Problem) String() string {
	switch {
	case p.File != "" && p.Line > 0:
		return p.File + ":" + strconv.Itoa(p.Line) + ": " + p.Message
	case p.File != "":
		return p.File + ": " + p.Message
	default:
		return p.Message
	}
}

// compileErrorFrom converts OPA's parser and compiler errors (ast.Errors)
// into a CompileError; other errors become a bundle-wide problem.
func compileErrorFrom(err error) *CompileError {
	var ce *CompileError
	if errors.As(err, &ce) {
		return ce
	}
	var errs ast.Errors
	if errors.As(err, &errs) {
		out := &CompileError{}
		for _, e := range errs {
			out.Problems = append(out.Problems, problemFrom(e))
		}
		return out
	}
	var one *ast.Error
	if errors.As(err, &one) {
		return &CompileError{Problems: []Problem{problemFrom(one)}}
	}
	return &CompileError{Problems: []Problem{{Message: err.Error()}}}
}

func problemFrom(e *ast.Error) Problem {
	p := Problem{Message: e.Message}
	if e.Location != nil {
		p.File, p.Line = e.Location.File, e.Location.Row
	}
	return p
}

// jsonProblem locates a data.json syntax error by line.
func jsonProblem(file string, content []byte, err error) Problem {
	p := Problem{File: file, Message: "invalid JSON: " + err.Error()}
	var se *json.SyntaxError
	if errors.As(err, &se) && se.Offset <= int64(len(content)) {
		p.Line = 1 + strings.Count(string(content[:se.Offset]), "\n")
	}
	return p
}
