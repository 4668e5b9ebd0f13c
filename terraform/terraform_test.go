// Static checks of the Terraform module, run by `go test ./...`. This machine
// cannot download providers, so `terraform validate` and `plan` cannot run
// here (see README.md); these tests check what can be checked without them:
// the HCL parses, every variable and output is documented and typed, the
// IAM policies name nothing but the cluster's bucket, prefix and KMS key,
// the example passes the module exactly the variables it has, the user-data
// template renders to valid bash that builds the right broker command line,
// and, where terraform is installed, `terraform fmt` finds nothing to change.
package terraform_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// tfFile is one parsed .tf file.
type tfFile struct {
	path string
	body *hclsyntax.Body
}

// parseTF parses every .tf file in dir (and below it when recursive),
// skipping hidden directories such as .terraform.
func parseTF(t *testing.T, dir string, recursive bool) []tfFile {
	t.Helper()
	parser := hclparse.NewParser()
	var files []tfFile
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != dir && (!recursive || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if filepath.Ext(path) != ".tf" {
			return nil
		}
		f, diags := parser.ParseHCLFile(path)
		if diags.HasErrors() {
			t.Errorf("%s does not parse: %s", path, diags.Error())
			return nil
		}
		files = append(files, tfFile{path: path, body: f.Body.(*hclsyntax.Body)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no .tf files in %s", dir)
	}
	return files
}

// parseSource parses one HCL snippet (for the checks' own tests).
func parseSource(t *testing.T, name, src string) []tfFile {
	t.Helper()
	f, diags := hclparse.NewParser().ParseHCL([]byte(src), name)
	if diags.HasErrors() {
		t.Fatalf("%s does not parse: %s", name, diags.Error())
	}
	return []tfFile{{path: name, body: f.Body.(*hclsyntax.Body)}}
}

// blocks returns the top-level blocks of type typ (and, if labels are given,
// with those leading labels) in files.
func blocks(files []tfFile, typ string, labels ...string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, f := range files {
		for _, b := range f.body.Blocks {
			if b.Type == typ && len(b.Labels) >= len(labels) && slices.Equal(b.Labels[:len(labels)], labels) {
				out = append(out, b)
			}
		}
	}
	return out
}

// where names a block for error messages: "file:line type labels".
func where(b *hclsyntax.Block) string {
	return fmt.Sprintf("%s:%d %s %s", b.TypeRange.Filename, b.TypeRange.Start.Line, b.Type, strings.Join(b.Labels, "."))
}

// literalString returns the value of an attribute that is a constant string.
func literalString(attr *hclsyntax.Attribute) (string, bool) {
	if attr == nil {
		return "", false
	}
	v, diags := attr.Expr.Value(nil)
	if diags.HasErrors() || !v.IsKnown() || v.IsNull() || v.Type() != cty.String {
		return "", false
	}
	return v.AsString(), true
}

// traversalString renders a traversal as Terraform source: var.prefix,
// aws_s3_bucket.this.arn, each.value["x"].
func traversalString(tr hcl.Traversal) string {
	var sb strings.Builder
	for _, step := range tr {
		switch s := step.(type) {
		case hcl.TraverseRoot:
			sb.WriteString(s.Name)
		case hcl.TraverseAttr:
			sb.WriteString("." + s.Name)
		case hcl.TraverseIndex:
			if s.Key.Type() == cty.String {
				fmt.Fprintf(&sb, "[%q]", s.Key.AsString())
			} else {
				sb.WriteString("[?]")
			}
		default:
			sb.WriteString("[?]")
		}
	}
	return sb.String()
}

// shape renders a string expression made only of literals and references as
// a pattern: literal text as it is, each reference as {reference}. So
// "${aws_s3_bucket.this.arn}/${var.prefix}/*" becomes
// "{aws_s3_bucket.this.arn}/{var.prefix}/*". Anything else (function calls,
// conditionals) has no shape: ok is false. alias maps a reference (the
// iterator of a dynamic block) to what it stands for.
func shape(expr hclsyntax.Expression, alias map[string]string) (string, bool) {
	switch e := expr.(type) {
	case *hclsyntax.TemplateWrapExpr:
		return shape(e.Wrapped, alias)
	case *hclsyntax.ScopeTraversalExpr:
		ref := traversalString(e.Traversal)
		if a, ok := alias[ref]; ok {
			ref = a
		}
		return "{" + ref + "}", true
	case *hclsyntax.LiteralValueExpr:
		if e.Val.Type() != cty.String || e.Val.IsNull() {
			return "", false
		}
		return e.Val.AsString(), true
	case *hclsyntax.TemplateExpr:
		var sb strings.Builder
		for _, part := range e.Parts {
			s, ok := shape(part, alias)
			if !ok {
				return "", false
			}
			sb.WriteString(s)
		}
		return sb.String(), true
	}
	return "", false
}

// listShapes returns the shapes of the elements of a list literal.
func listShapes(attr *hclsyntax.Attribute, alias map[string]string) ([]string, error) {
	tuple, ok := attr.Expr.(*hclsyntax.TupleConsExpr)
	if !ok {
		return nil, fmt.Errorf("%s is not a list literal", attr.Name)
	}
	var out []string
	for _, el := range tuple.Exprs {
		s, ok := shape(el, alias)
		if !ok {
			return nil, fmt.Errorf("%s has an element that is not a string literal or reference (line %d)", attr.Name, el.Range().Start.Line)
		}
		out = append(out, s)
	}
	return out, nil
}

// The resources a statement may name, as shapes. Any other resource (a
// wildcard, another bucket's ARN, a computed string) is a finding.
const (
	bucketARN       = "{aws_s3_bucket.this.arn}"
	prefixObjects   = "{aws_s3_bucket.this.arn}/{var.prefix}/*"
	allObjects      = "{aws_s3_bucket.this.arn}/*" // deny statements only
	kmsKeyARN       = "{var.kms_key_arn}"
	policyDocPrefix = "data.aws_iam_policy_document."
)

// statementBodies returns the statement blocks of a policy document,
// including the content of dynamic "statement" blocks, with the alias that
// resolves the dynamic block's iterator.
func statementBodies(doc *hclsyntax.Block) (bodies []*hclsyntax.Body, aliases []map[string]string, problems []string) {
	for _, b := range doc.Body.Blocks {
		switch {
		case b.Type == "statement":
			bodies = append(bodies, b.Body)
			aliases = append(aliases, nil)
		case b.Type == "dynamic" && len(b.Labels) == 1 && b.Labels[0] == "statement":
			iterator := "statement"
			if it, ok := b.Body.Attributes["iterator"]; ok {
				iterator = hcl.ExprAsKeyword(it.Expr)
			}
			// The iterator's value stands for the one reference the
			// for_each is built from (for example var.kms_key_arn in
			// `var.kms_key_arn == null ? [] : [var.kms_key_arn]`).
			alias := map[string]string{}
			if fe, ok := b.Body.Attributes["for_each"]; ok {
				refs := map[string]bool{}
				for _, tr := range fe.Expr.Variables() {
					refs[traversalString(tr)] = true
				}
				if len(refs) == 1 {
					for ref := range refs {
						alias[iterator+".value"] = ref
					}
				}
			}
			for _, c := range b.Body.Blocks {
				if c.Type == "content" {
					bodies = append(bodies, c.Body)
					aliases = append(aliases, alias)
				}
			}
		default:
			problems = append(problems, fmt.Sprintf("%s: unexpected block %s in a policy document", where(doc), b.Type))
		}
	}
	return bodies, aliases, problems
}

// policyProblems checks every aws_iam_policy_document in files, and every
// place a policy is attached, against the module's least-privilege rule:
// the brokers get the bucket (list, under the prefix only), the objects under
// the prefix, and the KMS key, and nothing else.
func policyProblems(files []tfFile) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	docs := map[string]bool{}
	for _, doc := range blocks(files, "data", "aws_iam_policy_document") {
		docs[doc.Labels[1]] = true
		for _, forbidden := range []string{"source_policy_documents", "override_policy_documents", "source_json", "override_json"} {
			if _, ok := doc.Body.Attributes[forbidden]; ok {
				add("%s: %s merges in a policy this check cannot see", where(doc), forbidden)
			}
		}
		bodies, aliases, p := statementBodies(doc)
		problems = append(problems, p...)
		if len(bodies) == 0 {
			add("%s: no statements", where(doc))
		}
		for i, st := range bodies {
			problems = append(problems, statementProblems(where(doc), st, aliases[i])...)
		}
	}

	// Policies reach AWS only as the JSON of those documents: no inline
	// jsonencode, no managed-policy attachments.
	for _, f := range files {
		for _, b := range f.body.Blocks {
			if b.Type != "resource" || len(b.Labels) != 2 {
				continue
			}
			switch b.Labels[0] {
			case "aws_iam_role_policy_attachment", "aws_iam_policy_attachment", "aws_iam_policy", "aws_iam_user_policy", "aws_iam_group_policy":
				add("%s: only the inline role policy built from an aws_iam_policy_document is allowed", where(b))
			}
			if _, ok := b.Body.Attributes["managed_policy_arns"]; ok {
				add("%s: managed_policy_arns attaches policies this check cannot see", where(b))
			}
			for _, nb := range b.Body.Blocks {
				if nb.Type == "inline_policy" {
					add("%s: inline_policy blocks are not allowed; use aws_iam_role_policy with a policy document", where(b))
				}
			}
			for _, name := range []string{"policy", "assume_role_policy"} {
				attr, ok := b.Body.Attributes[name]
				if !ok {
					continue
				}
				ref, ok := attr.Expr.(*hclsyntax.ScopeTraversalExpr)
				s := ""
				if ok {
					s = traversalString(ref.Traversal)
				}
				doc := strings.TrimSuffix(strings.TrimPrefix(s, policyDocPrefix), ".json")
				if !ok || !strings.HasPrefix(s, policyDocPrefix) || !strings.HasSuffix(s, ".json") || !docs[doc] {
					add("%s: %s must be data.aws_iam_policy_document.NAME.json of a document in the module", where(b), name)
				}
			}
		}
	}
	return problems
}

// statementProblems checks one statement of a policy document.
func statementProblems(doc string, st *hclsyntax.Body, alias map[string]string) []string {
	var problems []string
	add := func(format string, args ...any) {
		problems = append(problems, doc+": "+fmt.Sprintf(format, args...))
	}
	effect := "Allow"
	if attr, ok := st.Attributes["effect"]; ok {
		s, ok := literalString(attr)
		if !ok {
			add("effect is not a literal")
			return problems
		}
		effect = s
	}
	for _, name := range []string{"not_actions", "not_resources", "not_principals"} {
		if _, ok := st.Attributes[name]; ok && effect == "Allow" {
			add("an Allow statement uses %s, which grants everything not listed", name)
		}
	}

	var actions []string
	if attr, ok := st.Attributes["actions"]; ok {
		shapes, err := listShapes(attr, nil)
		if err != nil {
			add("%v", err)
		}
		for _, a := range shapes {
			if strings.Contains(a, "{") {
				add("action %q is computed", a)
			}
			if effect == "Allow" && strings.Contains(a, "*") {
				add("Allow statement with wildcard action %q", a)
			}
		}
		actions = shapes
	} else {
		add("statement has no actions")
	}

	resAttr, hasResources := st.Attributes["resources"]
	if !hasResources {
		// Only a trust policy has no resources: sts:AssumeRole for a
		// service principal.
		hasPrincipal := slices.ContainsFunc(st.Blocks, func(b *hclsyntax.Block) bool { return b.Type == "principals" })
		if effect != "Allow" || !slices.Equal(actions, []string{"sts:AssumeRole"}) || !hasPrincipal {
			add("statement without resources that is not an sts:AssumeRole trust statement")
		}
		return problems
	}
	resources, err := listShapes(resAttr, alias)
	if err != nil {
		add("%v", err)
		return problems
	}
	if len(resources) == 0 {
		add("empty resources")
	}
	for _, r := range resources {
		switch {
		case r == bucketARN || r == prefixObjects:
			if slices.ContainsFunc(actions, func(a string) bool { return strings.HasPrefix(a, "kms:") }) {
				add("kms actions on the bucket resource %s", r)
			}
		case r == allObjects && effect == "Deny":
		case r == kmsKeyARN:
			if !slices.ContainsFunc(actions, func(a string) bool { return strings.HasPrefix(a, "kms:") }) ||
				slices.ContainsFunc(actions, func(a string) bool { return !strings.HasPrefix(a, "kms:") }) {
				add("the KMS key may only appear with kms: actions")
			}
		default:
			add("resource %q is not the cluster bucket, its prefix or the KMS key", r)
		}
	}

	// Listing is a bucket-level action; it must be limited to the prefix.
	if effect == "Allow" && slices.Contains(actions, "s3:ListBucket") {
		limited := false
		for _, c := range st.Blocks {
			if c.Type != "condition" {
				continue
			}
			variable, _ := literalString(c.Body.Attributes["variable"])
			test, _ := literalString(c.Body.Attributes["test"])
			values, ok := c.Body.Attributes["values"]
			if variable != "s3:prefix" || !ok || (test != "StringLike" && test != "StringEquals") {
				continue
			}
			shapes, err := listShapes(values, alias)
			if err == nil && len(shapes) > 0 && !slices.ContainsFunc(shapes, func(s string) bool { return !strings.HasPrefix(s, "{var.prefix}/") }) {
				limited = true
			}
		}
		if !limited {
			add("s3:ListBucket without an s3:prefix condition limiting it to \"${var.prefix}/...\"")
		}
	}
	return problems
}

func TestVariablesHaveDescriptionAndType(t *testing.T) {
	files := parseTF(t, ".", true)
	n := 0
	for _, v := range blocks(files, "variable") {
		n++
		if d, ok := literalString(v.Body.Attributes["description"]); !ok || strings.TrimSpace(d) == "" {
			t.Errorf("%s: no description", where(v))
		}
		if _, ok := v.Body.Attributes["type"]; !ok {
			t.Errorf("%s: no type", where(v))
		}
	}
	if n == 0 {
		t.Fatal("no variable blocks found")
	}
}

func TestOutputsHaveDescription(t *testing.T) {
	files := parseTF(t, ".", true)
	n := 0
	for _, o := range blocks(files, "output") {
		n++
		if d, ok := literalString(o.Body.Attributes["description"]); !ok || strings.TrimSpace(d) == "" {
			t.Errorf("%s: no description", where(o))
		}
	}
	if n == 0 {
		t.Fatal("no output blocks found")
	}
	for _, want := range []string{"bootstrap_servers", "bucket_name", "role_arn", "security_group_id"} {
		if len(blocks(parseTF(t, ".", false), "output", want)) != 1 {
			t.Errorf("the module has no output %q", want)
		}
	}
}

func TestIAMPolicyNamesOnlyTheClusterBucket(t *testing.T) {
	files := parseTF(t, ".", false)
	if n := len(blocks(files, "data", "aws_iam_policy_document")); n < 2 {
		t.Fatalf("found %d aws_iam_policy_document data sources, want the trust policy and the broker policy at least", n)
	}
	for _, p := range policyProblems(files) {
		t.Error(p)
	}

	// The brokers' role must get exactly the object actions the broker
	// needs, on the prefix.
	var granted []string
	for _, doc := range blocks(files, "data", "aws_iam_policy_document", "broker") {
		bodies, aliases, _ := statementBodies(doc)
		for i, st := range bodies {
			resAttr, ok := st.Attributes["resources"]
			if !ok {
				continue
			}
			res, _ := listShapes(resAttr, aliases[i])
			if slices.Contains(res, prefixObjects) {
				granted, _ = listShapes(st.Attributes["actions"], nil)
			}
		}
	}
	slices.Sort(granted)
	want := []string{"s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:PutObject"}
	if !slices.Equal(granted, want) {
		t.Errorf("actions on %s = %v, want %v", prefixObjects, granted, want)
	}
}

// The check itself must catch what it is there to catch.
func TestIAMPolicyCheckFindsViolations(t *testing.T) {
	const attach = `
resource "aws_iam_role_policy" "p" {
  role   = "r"
  policy = data.aws_iam_policy_document.d.json
}
`
	bad := map[string]string{
		"wildcard resource": `
data "aws_iam_policy_document" "d" {
  statement {
    actions   = ["s3:GetObject"]
    resources = ["*"]
  }
}`,
		"other bucket": `
data "aws_iam_policy_document" "d" {
  statement {
    actions   = ["s3:GetObject"]
    resources = ["arn:aws:s3:::someone-elses-bucket/*"]
  }
}`,
		"other bucket resource": `
data "aws_iam_policy_document" "d" {
  statement {
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.other.arn}/${var.prefix}/*"]
  }
}`,
		"whole bucket": `
data "aws_iam_policy_document" "d" {
  statement {
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.this.arn}/*"]
  }
}`,
		"wildcard action": `
data "aws_iam_policy_document" "d" {
  statement {
    actions   = ["s3:*"]
    resources = ["${aws_s3_bucket.this.arn}/${var.prefix}/*"]
  }
}`,
		"unconditioned list": `
data "aws_iam_policy_document" "d" {
  statement {
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.this.arn]
  }
}`,
		"computed resource": `
data "aws_iam_policy_document" "d" {
  statement {
    actions   = ["s3:GetObject"]
    resources = [format("%s/*", var.bucket)]
  }
}`,
		"not_resources": `
data "aws_iam_policy_document" "d" {
  statement {
    actions       = ["s3:GetObject"]
    not_resources = [aws_s3_bucket.this.arn]
    resources     = [aws_s3_bucket.this.arn]
  }
}`,
		"dynamic wildcard": `
data "aws_iam_policy_document" "d" {
  dynamic "statement" {
    for_each = ["*"]
    content {
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }
}`,
		"inline json policy": `
data "aws_iam_policy_document" "d" {
  statement {
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.this.arn}/${var.prefix}/*"]
  }
}
resource "aws_iam_role_policy" "q" {
  role   = "r"
  policy = jsonencode({ Statement = [{ Effect = "Allow", Action = "*", Resource = "*" }] })
}`,
		"managed policy": `
data "aws_iam_policy_document" "d" {
  statement {
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.this.arn}/${var.prefix}/*"]
  }
}
resource "aws_iam_role_policy_attachment" "a" {
  role       = "r"
  policy_arn = "arn:aws:iam::aws:policy/AmazonS3FullAccess"
}`,
	}
	for name, src := range bad {
		problems := policyProblems(parseSource(t, name+".tf", src+attach))
		if len(problems) == 0 {
			t.Errorf("%s: the policy check found nothing wrong", name)
		}
	}

	good := `
data "aws_iam_policy_document" "d" {
  statement {
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.this.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.prefix}/*"]
    }
  }
  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]
    content {
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }
}`
	if problems := policyProblems(parseSource(t, "good.tf", good+attach)); len(problems) > 0 {
		t.Errorf("a correct policy was flagged: %v", problems)
	}
}

// templateCall finds the module's one templatefile() call and returns the
// template's path and the keys (with their expressions) of the object of
// variables it is given.
func templateCall(t *testing.T, files []tfFile) (string, map[string]hclsyntax.Expression) {
	t.Helper()
	var calls []*hclsyntax.FunctionCallExpr
	for _, f := range files {
		hclsyntax.VisitAll(f.body, func(n hclsyntax.Node) hcl.Diagnostics {
			if c, ok := n.(*hclsyntax.FunctionCallExpr); ok && c.Name == "templatefile" {
				calls = append(calls, c)
			}
			return nil
		})
	}
	if len(calls) != 1 || len(calls[0].Args) != 2 {
		t.Fatalf("want exactly one templatefile(path, vars) call in the module, found %d", len(calls))
	}
	pathShape, ok := shape(calls[0].Args[0], nil)
	if !ok || !strings.HasPrefix(pathShape, "{path.module}/") {
		t.Fatalf("templatefile path %q is not relative to path.module", pathShape)
	}
	obj, ok := calls[0].Args[1].(*hclsyntax.ObjectConsExpr)
	if !ok {
		t.Fatal("templatefile's variables are not an object literal")
	}
	vars := map[string]hclsyntax.Expression{}
	for _, item := range obj.Items {
		key := hcl.ExprAsKeyword(item.KeyExpr)
		if key == "" {
			t.Fatalf("templatefile variable key at line %d is not a plain name", item.KeyExpr.Range().Start.Line)
		}
		vars[key] = item.ValueExpr
	}
	return strings.TrimPrefix(pathShape, "{path.module}/"), vars
}

// renderUserData renders the user-data template with vars, as Terraform's
// templatefile would.
func renderUserData(t *testing.T, path string, vars map[string]cty.Value) string {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	expr, diags := hclsyntax.ParseTemplate(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("template does not parse: %s", diags.Error())
	}
	v, diags := expr.Value(&hcl.EvalContext{Variables: vars})
	if diags.HasErrors() {
		t.Fatalf("template does not render: %s", diags.Error())
	}
	return v.AsString()
}

// userDataVars are stand-in values for every variable the module passes.
func userDataVars(nodeID, join string, overrides ...string) map[string]cty.Value {
	list := cty.ListValEmpty(cty.String)
	if len(overrides) > 0 {
		var vals []cty.Value
		for _, o := range overrides {
			vals = append(vals, cty.StringVal(o))
		}
		list = cty.ListVal(vals)
	}
	return map[string]cty.Value{
		"node_id":       cty.StringVal(nodeID),
		"join":          cty.StringVal(join),
		"bucket":        cty.StringVal("tiercel-demo-20250101"),
		"prefix":        cty.StringVal("tiercel"),
		"region":        cty.StringVal("eu-west-1"),
		"kafka_port":    cty.NumberIntVal(9092),
		"gossip_port":   cty.NumberIntVal(7946),
		"metrics_port":  cty.NumberIntVal(9644),
		"binary_url":    cty.StringVal("https://example.com/tiercel-linux-amd64"),
		"binary_sha256": cty.StringVal(strings.Repeat("ab", 32)),
		"overrides":     list,
		"log_level":     cty.StringVal("info"),
		"stop_timeout":  cty.NumberIntVal(120),
		"mount_point":   cty.StringVal("/var/lib/tiercel"),
	}
}

// section returns the part of the rendered script from the marker comment
// "# ---...--- name" to the next marker.
func section(t *testing.T, script, name string) string {
	t.Helper()
	const marker = "# -------------------------------------------------"
	start := strings.Index(script, marker+" "+name+"\n")
	if start < 0 {
		t.Fatalf("user data has no section %q", name)
	}
	rest := script[start+len(marker):]
	if end := strings.Index(rest, marker); end >= 0 {
		rest = rest[:end]
	}
	return marker + rest
}

// heredoc returns the body of the quoted here-document ending in tag.
func heredoc(t *testing.T, script, tag string) string {
	t.Helper()
	start := strings.Index(script, "<<'"+tag+"'\n")
	if start < 0 {
		t.Fatalf("no here-document %s", tag)
	}
	body := script[start+len("<<'"+tag+"'\n"):]
	end := strings.Index(body, "\n"+tag+"\n")
	if end < 0 {
		t.Fatalf("here-document %s is not closed", tag)
	}
	return body[:end+1]
}

// bashCheck runs bash -n on script, and shellcheck when it is installed.
func bashCheck(t *testing.T, name, script string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("bash", "-n", path).CombinedOutput(); err != nil {
		t.Errorf("bash -n %s: %v\n%s", name, err, out)
	}
	if _, err := exec.LookPath("shellcheck"); err != nil {
		t.Logf("shellcheck is not on PATH; %s checked with bash -n only", name)
		return
	}
	if out, err := exec.Command("shellcheck", "--shell=bash", "--severity=warning", path).CombinedOutput(); err != nil {
		t.Errorf("shellcheck %s: %v\n%s", name, err, out)
	}
}

func TestUserDataTemplate(t *testing.T) {
	files := parseTF(t, ".", false)
	path, passed := templateCall(t, files)

	// The template uses exactly the variables the module passes.
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	expr, diags := hclsyntax.ParseTemplate(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("template does not parse: %s", diags.Error())
	}
	used := map[string]bool{}
	for _, tr := range expr.Variables() {
		used[tr.RootName()] = true
	}
	for name := range used {
		if _, ok := passed[name]; !ok && name != "setting" {
			t.Errorf("the template uses %q, which the module does not pass", name)
		}
	}
	for name := range passed {
		if !used[name] {
			t.Errorf("the module passes %q, which the template does not use", name)
		}
	}
	vars := userDataVars("", "")
	for name := range passed {
		if _, ok := vars[name]; !ok {
			t.Errorf("the test has no stand-in value for template variable %q", name)
		}
	}

	// The object store the brokers use is the bucket the policy is about.
	if s, _ := shape(passed["bucket"], nil); s != "{aws_s3_bucket.this.bucket}" {
		t.Errorf("user data bucket is %s, want the module's bucket", s)
	}
	if s, _ := shape(passed["prefix"], nil); s != "{var.prefix}" {
		t.Errorf("user data prefix is %s, want var.prefix", s)
	}

	fixed := renderUserData(t, path, userDataVars("2", "10.0.1.10:7946,10.0.3.10:7946", "default.replication.factor=3", "min.insync.replicas=2"))
	scaling := renderUserData(t, path, userDataVars("", "internal-tcl-123.elb.eu-west-1.amazonaws.com:7946"))
	for name, script := range map[string]string{"fixed.sh": fixed, "autoscaling.sh": scaling} {
		bashCheck(t, name, script)
		bashCheck(t, "prepare-disk-"+name, heredoc(t, script, "PREPARE_DISK"))
		for _, want := range []string{
			"OBJECT_STORE='s3://tiercel-demo-20250101/tiercel'",
			"X-aws-ec2-metadata-token-ttl-seconds", // IMDSv2
			"placement/availability-zone",
			"sha256sum -c",
			"mdadm --create",
			"Restart=always",
			"LimitNOFILE=",
			"KillSignal=SIGTERM",
			"TimeoutStopSec=$STOP_TIMEOUT",
			"STOP_TIMEOUT='120'",
			"Requires=tiercel-disk.service",
		} {
			if !strings.Contains(script, want) {
				t.Errorf("%s does not contain %q", name, want)
			}
		}
	}
}

// runBootstrap runs the identity and command-line sections of a rendered
// user data with IMDS and the tiercel binary stubbed, and returns the
// broker's arguments, one per line.
func runBootstrap(t *testing.T, script, helpText string) []string {
	t.Helper()
	dir := t.TempDir()
	stub := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/bash\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// IMDSv2: the token PUT, then reads that must carry the token.
	stub("curl", `
url="${@: -1}"
case "$url" in
*/api/token) echo tok ;;
*/meta-data/local-ipv4) [[ "$*" == *"X-aws-ec2-metadata-token: tok"* ]] || exit 22; echo 10.0.5.37 ;;
*/meta-data/placement/availability-zone) [[ "$*" == *"X-aws-ec2-metadata-token: tok"* ]] || exit 22; echo eu-west-1b ;;
*) exit 22 ;;
esac
`)
	stub("tiercel", "cat <<'HELP'\n"+helpText+"HELP\n")
	// Everything before the identity section: settings and helpers.
	identity := section(t, script, "instance identity (IMDSv2)")
	header := script[:strings.Index(script, identity)]
	program := header +
		"BINARY=" + filepath.Join(dir, "tiercel") + "\n" +
		identity +
		section(t, script, "broker command line") +
		`printf '%s\n' "${args[@]}"` + "\n"
	cmd := exec.Command("bash", "-c", program)
	cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bootstrap sections failed: %v\n%s", err, stderr.String())
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// argValue returns the value after flag in args.
func argValue(args []string, flag string) (string, bool) {
	i := slices.Index(args, flag)
	if i < 0 || i+1 >= len(args) {
		return "", false
	}
	return args[i+1], true
}

func TestUserDataBrokerCommandLine(t *testing.T) {
	files := parseTF(t, ".", false)
	path, _ := templateCall(t, files)

	// Help text in the form Go's flag package prints it: today's binary,
	// and one with the flags of the cluster and operations issues.
	const today = "Flags:\n  -advertise HOST:PORT\n  -node-id int\n  -rack string\n"
	const later = today + "  -gossip-listen HOST:PORT\n  -join HOST:PORT[,...]\n  -metrics-listen HOST:PORT\n"

	fixed := renderUserData(t, path, userDataVars("2", "10.0.1.10:7946,10.0.3.10:7946", "min.insync.replicas=2"))
	args := runBootstrap(t, fixed, later)
	for flag, want := range map[string]string{
		"--node-id":        "2",
		"--advertise":      "10.0.5.37:9092",
		"--listen":         "0.0.0.0:9092",
		"--rack":           "eu-west-1b",
		"--object-store":   "s3://tiercel-demo-20250101/tiercel",
		"--s3-region":      "eu-west-1",
		"--data-dir":       "/var/lib/tiercel/data",
		"--gossip-listen":  "10.0.5.37:7946",
		"--join":           "10.0.1.10:7946,10.0.3.10:7946",
		"--metrics-listen": "0.0.0.0:9644",
		"--override":       "min.insync.replicas=2",
		"--log-format":     "json",
	} {
		if got, ok := argValue(args, flag); !ok || got != want {
			t.Errorf("fixed mode: %s = %q (present %v), want %q; args %q", flag, got, ok, want, args)
		}
	}

	// Autoscaling: the node id comes from the private IP 10.0.5.37.
	scaling := renderUserData(t, path, userDataVars("", "internal-tcl.elb.amazonaws.com:7946"))
	args = runBootstrap(t, scaling, later)
	if got, _ := argValue(args, "--node-id"); got != fmt.Sprint(5*256+37) {
		t.Errorf("autoscaling: --node-id = %q, want %d", got, 5*256+37)
	}
	if got, _ := argValue(args, "--join"); got != "internal-tcl.elb.amazonaws.com:7946" {
		t.Errorf("autoscaling: --join = %q", got)
	}

	// A binary from before the cluster issue gets none of the new flags
	// (it would refuse to start with them).
	args = runBootstrap(t, fixed, today)
	for _, flag := range []string{"--gossip-listen", "--join", "--metrics-listen"} {
		if slices.Contains(args, flag) {
			t.Errorf("today's binary was given %s: %q", flag, args)
		}
	}
	if got, _ := argValue(args, "--advertise"); got != "10.0.5.37:9092" {
		t.Errorf("today's binary: --advertise = %q", got)
	}
}

func TestExampleMatchesModuleVariables(t *testing.T) {
	module := parseTF(t, ".", false)
	vars := map[string]bool{} // name -> required
	for _, v := range blocks(module, "variable") {
		_, hasDefault := v.Body.Attributes["default"]
		vars[v.Labels[0]] = !hasDefault
	}
	example := parseTF(t, filepath.Join("examples", "basic"), false)
	calls := blocks(example, "module")
	if len(calls) != 1 {
		t.Fatalf("examples/basic has %d module blocks, want 1", len(calls))
	}
	call := calls[0]
	if src, _ := literalString(call.Body.Attributes["source"]); src != "../.." {
		t.Errorf("examples/basic uses module source %q, want \"../..\"", src)
	}
	meta := map[string]bool{"source": true, "version": true, "providers": true, "count": true, "for_each": true, "depends_on": true}
	for name := range call.Body.Attributes {
		if _, ok := vars[name]; !ok && !meta[name] {
			t.Errorf("examples/basic passes %q, which the module does not declare", name)
		}
	}
	for name, required := range vars {
		if _, ok := call.Body.Attributes[name]; required && !ok {
			t.Errorf("examples/basic does not pass the required variable %q", name)
		}
	}
	// The example's own outputs may only read outputs the module has.
	outputs := map[string]bool{}
	for _, o := range blocks(module, "output") {
		outputs[o.Labels[0]] = true
	}
	for _, o := range blocks(example, "output") {
		for _, tr := range o.Body.Attributes["value"].Expr.Variables() {
			s := traversalString(tr)
			if rest, ok := strings.CutPrefix(s, "module."+call.Labels[0]+"."); ok && !outputs[rest] {
				t.Errorf("%s reads module output %q, which does not exist", where(o), rest)
			}
		}
	}
}

func TestTerraformFmt(t *testing.T) {
	tf, err := exec.LookPath("terraform")
	if err != nil {
		t.Skip("terraform is not on PATH: `terraform fmt -check -recursive` was not run (the HCL checks above still ran)")
	}
	cmd := exec.Command(tf, "fmt", "-check", "-recursive", "-diff", ".")
	cmd.Env = append(os.Environ(), "CHECKPOINT_DISABLE=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("terraform fmt -check -recursive: %v\n%s%s\nrun `terraform fmt -recursive terraform/` to fix", err, stdout.String(), stderr.String())
	}
	t.Logf("terraform fmt -check -recursive: clean (%s)", tf)
}
