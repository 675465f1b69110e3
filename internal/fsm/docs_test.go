package fsm

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the generated sections of docs/fsm.md")

const docPath = "../../docs/fsm.md"

// sections are the generated parts of docs/fsm.md, by marker name.
func sections() map[string]string {
	return map[string]string{
		"diagram": "```mermaid\n" + Diagram() + "```\n",
		"table":   TableMarkdown(),
		"reasons": ReasonMarkdown(),
	}
}

// render replaces the body between every <!-- BEGIN GENERATED name -->
// and <!-- END GENERATED name --> pair of doc with sections()[name].
func render(doc string) (string, error) {
	for name, body := range sections() {
		begin := fmt.Sprintf("<!-- BEGIN GENERATED %s -->\n", name)
		end := fmt.Sprintf("<!-- END GENERATED %s -->", name)
		i := strings.Index(doc, begin)
		j := strings.Index(doc, end)
		if i < 0 || j < i {
			return "", fmt.Errorf("docs/fsm.md: markers of section %q missing or out of order", name)
		}
		doc = doc[:i+len(begin)] + body + doc[j:]
	}
	return doc, nil
}

func TestDocsUpToDate(t *testing.T) {
	b, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatalf("read docs: %v", err)
	}
	want, err := render(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(docPath, []byte(want), 0o644); err != nil {
			t.Fatalf("write docs: %v", err)
		}
		return
	}
	if string(b) != want {
		t.Fatal("docs/fsm.md is stale: run go test ./internal/fsm -run TestDocs -update")
	}
}

func TestDocsRender(t *testing.T) {
	doc := "intro\n<!-- BEGIN GENERATED diagram -->\nold\n<!-- END GENERATED diagram -->\n" +
		"<!-- BEGIN GENERATED table -->\n<!-- END GENERATED table -->\n" +
		"<!-- BEGIN GENERATED reasons -->\nstale | row\n<!-- END GENERATED reasons -->\nouttro\n"
	got, err := render(doc)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got, "old\n") || strings.Contains(got, "stale | row") ||
		!strings.Contains(got, Diagram()) || !strings.Contains(got, TableMarkdown()) ||
		!strings.HasPrefix(got, "intro\n") || !strings.HasSuffix(got, "outtro\n") {
		t.Fatalf("render:\n%s", got)
	}
	again, _ := render(got)
	if again != got {
		t.Fatal("render is not idempotent")
	}
	if _, err := render("no markers"); err == nil {
		t.Fatal("missing markers not reported")
	}
}
