package localstack

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Template is a CloudFormation template as generic JSON values (intrinsic short forms expanded).
type Template map[string]any

// ParseTemplate reads a YAML (or JSON) CloudFormation template, expanding the short forms of the intrinsic
// functions (!Ref, !GetAtt a.b, !Sub, !If, ...) into their long JSON forms.
func ParseTemplate(src []byte) (Template, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	v, err := nodeValue(&doc)
	if err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("parse template: top level is %T, want a mapping", v)
	}
	return Template(m), nil
}

func nodeValue(n *yaml.Node) (any, error) {
	var v any
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, fmt.Errorf("empty document")
		}
		return nodeValue(n.Content[0])
	case yaml.AliasNode:
		return nodeValue(n.Alias)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			val, err := nodeValue(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[n.Content[i].Value] = val
		}
		v = m
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			val, err := nodeValue(c)
			if err != nil {
				return nil, err
			}
			l = append(l, val)
		}
		v = l
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!int", "!!float", "!!bool", "!!null":
			if err := n.Decode(&v); err != nil {
				return nil, fmt.Errorf("line %d: %w", n.Line, err)
			}
		default:
			v = n.Value
		}
	}
	tag := n.Tag
	if !strings.HasPrefix(tag, "!") || strings.HasPrefix(tag, "!!") {
		return v, nil
	}
	switch name := tag[1:]; name {
	case "Ref", "Condition":
		return map[string]any{name: v}, nil
	case "GetAtt":
		if s, ok := v.(string); ok {
			res, attr, found := strings.Cut(s, ".")
			if !found {
				return nil, fmt.Errorf("line %d: !GetAtt %q: want Resource.Attribute", n.Line, s)
			}
			return map[string]any{"Fn::GetAtt": []any{res, attr}}, nil
		}
		return map[string]any{"Fn::GetAtt": v}, nil
	default:
		return map[string]any{"Fn::" + name: v}, nil
	}
}

// Disposition says what the local deployment does with a resource of the template.
type Disposition int

// Dispositions.
const (
	// InStack resources are created by moto's CloudFormation.
	InStack Disposition = iota
	// Applied resources are types moto's CloudFormation lacks or creates wrong (a KMS key is always symmetric there);
	// the deployer creates them through the service API, from the template's own properties, after the stack.
	Applied
	// Removed resources cannot or need not exist locally: the Lambda functions and their HTTP APIs (no runtime
	// without Docker; the SAM transform is not run by moto), their execution roles (moto enforces no IAM) and the
	// alarms and their metric filters (nothing local raises them), and the bucket policy (deny without TLS: moto enforces it, and the local
	// endpoint is plain HTTP).
	Removed
)

func (d Disposition) String() string {
	switch d {
	case InStack:
		return "stack"
	case Applied:
		return "applied"
	default:
		return "removed"
	}
}

var dispositionByType = map[string]Disposition{
	"AWS::Serverless::Function": Removed,
	"AWS::Serverless::HttpApi":  Removed,
	"AWS::Serverless::Api":      Removed,
	// The webhook callback API written out in plain API Gateway v2 resources (SAM's HttpApi event takes no
	// intrinsic path, and the callback route's path carries a per-stack key), and the function's invoke permission.
	"AWS::ApiGatewayV2::Api":         Removed,
	"AWS::ApiGatewayV2::Integration": Removed,
	"AWS::ApiGatewayV2::Route":       Removed,
	"AWS::ApiGatewayV2::Stage":       Removed,
	"AWS::Lambda::Permission":        Removed,
	"AWS::IAM::Role":                 Removed,
	"AWS::CloudWatch::Alarm":         Removed,
	// Metric filters feed the alarms; moto's CloudFormation lacks them.
	"AWS::Logs::MetricFilter":     Removed,
	"AWS::SecretsManager::Secret": Applied,
	"AWS::SQS::QueuePolicy":       Applied,
	// moto's CloudFormation creates every key symmetric, whatever KeySpec and KeyUsage say: a signing key must be
	// created through the KMS API. A symmetric key stays in the stack (see disposition).
	"AWS::KMS::Key": Applied,
	// The bucket policy denies every request without TLS, and moto enforces it: over the local endpoint's plain
	// HTTP nothing could use the bucket. Real AWS gets it; the local stack does not.
	"AWS::S3::BucketPolicy": Removed,
}

// disposition is what the local deployment does with a resource of type typ: dispositionByType, except that a
// symmetric KMS key (no KeySpec, or SYMMETRIC_DEFAULT: the alarm topic's key) stays in the stack, since moto's
// CloudFormation creates exactly that, and a resource that refers to it (the topic) can then stay there too; and
// such a key may be conditional (AlarmKey, with AlarmEmail), which an applied resource cannot be.
func disposition(typ string, props map[string]any) Disposition {
	if typ == "AWS::KMS::Key" {
		if spec, _ := props["KeySpec"].(string); spec == "" || spec == "SYMMETRIC_DEFAULT" {
			return InStack
		}
	}
	return dispositionByType[typ]
}

// Plan is the template as moto gets it, and what happens to each resource.
type Plan struct {
	// Body is the JSON template body for moto's CreateStack.
	Body string
	// Types maps every logical id of the original template to its resource type.
	Types map[string]string
	// Disposition maps every logical id to what the deployment does with it.
	Disposition map[string]Disposition
	// Applied holds the resources the deployer creates itself, in template order of dependency
	// (secrets and keys, then policies), with every intrinsic replaced by a placeholder.
	Applied []AppliedResource
	// Environment is Globals.Function.Environment.Variables: what a Lambda would get, as expressions.
	Environment map[string]any
	// placeholders maps a synthetic output name to the placeholder string it stands for.
	placeholders map[string]string
	// envOutput maps an environment variable to the synthetic output that evaluates it in the stack.
	envOutput map[string]string
	// envApplied maps an environment variable whose value is a Ref to an applied resource to that resource.
	envApplied map[string]string
	// envLiteral holds the environment variables with a plain value.
	envLiteral map[string]string
	// Properties holds each resource's properties as the template writes them.
	Properties map[string]map[string]any
	// nameOutput maps an event bus to a synthetic output of its name: moto lists buses without a physical id.
	nameOutput map[string]string
	// completeProps holds, per in-stack resource, the properties the deployer completes (see completions), with
	// every intrinsic replaced by a placeholder that the stack's outputs fill.
	completeProps map[string]map[string]any
}

// AppliedResource is a resource created through the service API.
type AppliedResource struct {
	LogicalID  string
	Type       string
	Properties map[string]any
}

const placeholderOutputPrefix = "LocalStackValue"

// Prepare turns the real template into one moto can deploy: it drops the SAM transform and Globals, removes the
// resources that cannot exist locally, takes out the ones moto's CloudFormation lacks (to be applied through the
// service APIs), drops the outputs that refer to either, and adds one output per intrinsic value the applied
// resources need, so that moto itself evaluates them.
func Prepare(t Template) (*Plan, error) {
	resources, ok := t["Resources"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("template has no Resources")
	}
	p := newPlan(t, resources)
	out, kept, err := p.stackTemplate(t, resources)
	if err != nil {
		return nil, err
	}
	outputs := p.keptOutputs(t)
	// n numbers the placeholder outputs across the applied resources and the
	// completed properties.
	n := 0
	if err := p.planApplied(resources, outputs, &n); err != nil {
		return nil, err
	}
	if err := p.planCompletions(kept, outputs, &n); err != nil {
		return nil, err
	}
	p.planBusNames(kept, outputs)
	if err := p.planEnvironment(outputs); err != nil {
		return nil, err
	}
	if len(outputs) > 0 {
		out["Outputs"] = outputs
	}
	body, err := json.MarshalIndent(out, "", " ")
	if err != nil {
		return nil, fmt.Errorf("encode template: %w", err)
	}
	p.Body = string(body)
	return p, nil
}

// newPlan records each resource's type, disposition and properties, and the
// functions' environment (Globals.Function.Environment.Variables).
func newPlan(t Template, resources map[string]any) *Plan {
	p := &Plan{
		Types:         map[string]string{},
		Disposition:   map[string]Disposition{},
		placeholders:  map[string]string{},
		envOutput:     map[string]string{},
		envApplied:    map[string]string{},
		envLiteral:    map[string]string{},
		nameOutput:    map[string]string{},
		Properties:    map[string]map[string]any{},
		completeProps: map[string]map[string]any{},
	}
	for id, r := range resources {
		typ, _ := r.(map[string]any)["Type"].(string)
		p.Types[id] = typ
		p.Properties[id], _ = r.(map[string]any)["Properties"].(map[string]any)
		p.Disposition[id] = disposition(typ, p.Properties[id])
	}
	if g, ok := t["Globals"].(map[string]any); ok {
		if f, ok := g["Function"].(map[string]any); ok {
			if e, ok := f["Environment"].(map[string]any); ok {
				p.Environment, _ = e["Variables"].(map[string]any)
			}
		}
	}
	return p
}

// stackTemplate is t without the SAM transform, Globals and outputs, its
// resources only those moto's stack creates (kept); an in-stack resource that
// refers to one that is not is an error.
func (p *Plan) stackTemplate(t Template, resources map[string]any) (out Template, kept map[string]any, err error) {
	out = Template{}
	for k, v := range t {
		switch k {
		case "Transform", "Globals", "Resources", "Outputs":
		default:
			out[k] = v
		}
	}
	kept = map[string]any{}
	for id, r := range resources {
		if p.Disposition[id] == InStack {
			kept[id] = r
		}
	}
	for _, id := range sortedKeys(kept) {
		for _, dep := range refs(kept[id]) {
			if d, ok := p.Disposition[dep]; ok && d != InStack {
				return nil, nil, fmt.Errorf("resource %s refers to %s, which is %s locally", id, dep, d)
			}
		}
	}
	out["Resources"] = kept
	return out, kept, nil
}

// keptOutputs are the template's outputs that refer only to in-stack
// resources.
func (p *Plan) keptOutputs(t Template) map[string]any {
	outputs := map[string]any{}
	if o, ok := t["Outputs"].(map[string]any); ok {
		for name, v := range o {
			if p.refersOutside(v) {
				continue
			}
			outputs[name] = v
		}
	}
	return outputs
}

// planApplied lists the resources the deployer creates itself, secrets and
// keys first (policies could name them), their intrinsics made outputs.
func (p *Plan) planApplied(resources, outputs map[string]any, n *int) error {
	first := func(id string) bool {
		return p.Types[id] == "AWS::SecretsManager::Secret" || p.Types[id] == "AWS::KMS::Key"
	}
	ids := sortedKeys(resources)
	sort.SliceStable(ids, func(i, j int) bool { return first(ids[i]) && !first(ids[j]) })
	for _, id := range ids {
		if p.Disposition[id] != Applied {
			continue
		}
		r := resources[id].(map[string]any)
		if _, ok := r["Condition"]; ok {
			return fmt.Errorf("resource %s: conditional resources cannot be applied locally", id)
		}
		props, _ := r["Properties"].(map[string]any)
		replaced, err := p.extract(props, outputs, n)
		if err != nil {
			return fmt.Errorf("resource %s: %w", id, err)
		}
		rp, _ := replaced.(map[string]any)
		p.Applied = append(p.Applied, AppliedResource{LogicalID: id, Type: p.Types[id], Properties: rp})
	}
	return nil
}

// planCompletions keeps the properties the deployer completes on in-stack
// resources; they may use intrinsics (a parameter, typically), so moto
// evaluates them as outputs too.
func (p *Plan) planCompletions(kept, outputs map[string]any, n *int) error {
	for _, id := range sortedKeys(kept) {
		for _, name := range completions[p.Types[id]] {
			v, ok := p.Properties[id][name]
			if !ok {
				continue
			}
			replaced, err := p.extract(v, outputs, n)
			if err != nil {
				return fmt.Errorf("resource %s property %s: %w", id, name, err)
			}
			if p.completeProps[id] == nil {
				p.completeProps[id] = map[string]any{}
			}
			p.completeProps[id][name] = replaced
		}
	}
	return nil
}

// planBusNames adds an output of each event bus's name: moto lists buses
// without a physical id.
func (p *Plan) planBusNames(kept, outputs map[string]any) {
	for i, id := range sortedKeys(kept) {
		if p.Types[id] == "AWS::Events::EventBus" {
			out := fmt.Sprintf("%sName%d", placeholderOutputPrefix, i)
			outputs[out] = map[string]any{"Value": map[string]any{"Fn::GetAtt": []any{id, "Name"}}}
			p.nameOutput[id] = out
		}
	}
}

// planEnvironment sorts the functions' environment variables into literals,
// Refs to applied resources, and expressions moto evaluates as outputs.
func (p *Plan) planEnvironment(outputs map[string]any) error {
	for i, name := range sortedKeys(p.Environment) {
		expr := p.Environment[name]
		m, isMap := expr.(map[string]any)
		switch {
		case !isMap:
			p.envLiteral[name] = fmt.Sprint(expr)
		case p.appliedRef(m) != "":
			p.envApplied[name] = p.appliedRef(m)
		case p.refersOutside(m):
			return fmt.Errorf("environment variable %s: %v refers to a resource that is not in the local stack", name, m)
		default:
			out := fmt.Sprintf("%sEnv%d", placeholderOutputPrefix, i)
			outputs[out] = map[string]any{"Value": m}
			p.envOutput[name] = out
		}
	}
	return nil
}

// extract replaces each intrinsic function in v by a placeholder string and adds an output that evaluates it.
func (p *Plan) extract(v any, outputs map[string]any, n *int) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		if isIntrinsic(x) {
			if p.refersOutside(x) {
				return nil, fmt.Errorf("%v refers to a resource that is not in the local stack", x)
			}
			*n++
			name := fmt.Sprintf("%s%d", placeholderOutputPrefix, *n)
			ph := "${" + name + "}"
			outputs[name] = map[string]any{"Value": x}
			p.placeholders[name] = ph
			return ph, nil
		}
		m := make(map[string]any, len(x))
		for k, e := range x {
			r, err := p.extract(e, outputs, n)
			if err != nil {
				return nil, err
			}
			m[k] = r
		}
		return m, nil
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			r, err := p.extract(e, outputs, n)
			if err != nil {
				return nil, err
			}
			l[i] = r
		}
		return l, nil
	default:
		return v, nil
	}
}

// refersOutside says whether v refers to a resource that is not created by moto's CloudFormation.
func (p *Plan) refersOutside(v any) bool {
	for _, id := range refs(v) {
		if d, ok := p.Disposition[id]; ok && d != InStack {
			return true
		}
	}
	return false
}

// appliedRef returns X when m is {"Ref": X} and X is an applied resource.
func (p *Plan) appliedRef(m map[string]any) string {
	if len(m) != 1 {
		return ""
	}
	id, _ := m["Ref"].(string)
	if p.Disposition[id] == Applied && p.Types[id] != "" {
		return id
	}
	return ""
}

// queueRef returns Q when expr is {"Ref": Q} and Q is an SQS queue.
func (p *Plan) queueRef(expr any) string {
	m, ok := expr.(map[string]any)
	if !ok || len(m) != 1 {
		return ""
	}
	id, _ := m["Ref"].(string)
	if p.Types[id] == "AWS::SQS::Queue" {
		return id
	}
	return ""
}

func isIntrinsic(m map[string]any) bool {
	if len(m) != 1 {
		return false
	}
	for k := range m {
		return k == "Ref" || strings.HasPrefix(k, "Fn::")
	}
	return false
}

// refs lists the logical names v refers to through Ref, Fn::GetAtt and Fn::Sub.
func refs(v any) []string {
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				switch k {
				case "Ref":
					if s, ok := e.(string); ok {
						out = append(out, s)
					}
				case "Fn::GetAtt":
					if l, ok := e.([]any); ok && len(l) > 0 {
						if s, ok := l[0].(string); ok {
							out = append(out, s)
						}
					}
				case "Fn::Sub":
					s, _ := e.(string)
					if l, ok := e.([]any); ok && len(l) > 0 {
						s, _ = l[0].(string)
					}
					out = append(out, subNames(s)...)
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return out
}

// subNames lists the names in the ${Name} and ${Name.Attr} variables of a Fn::Sub string.
func subNames(s string) []string {
	var out []string
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			return out
		}
		s = s[i+2:]
		j := strings.Index(s, "}")
		if j < 0 {
			return out
		}
		name := s[:j]
		s = s[j+1:]
		if strings.HasPrefix(name, "!") {
			continue // ${!Literal}
		}
		name, _, _ = strings.Cut(name, ".")
		out = append(out, name)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// fill replaces the placeholders in v with the stack's output values.
func (p *Plan) fill(v any, outputs map[string]string) (any, error) {
	switch x := v.(type) {
	case string:
		for name, ph := range p.placeholders {
			if x == ph {
				val, ok := outputs[name]
				if !ok {
					return nil, fmt.Errorf("stack has no output %s", name)
				}
				return val, nil
			}
		}
		return x, nil
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			r, err := p.fill(e, outputs)
			if err != nil {
				return nil, err
			}
			m[k] = r
		}
		return m, nil
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			r, err := p.fill(e, outputs)
			if err != nil {
				return nil, err
			}
			l[i] = r
		}
		return l, nil
	default:
		return v, nil
	}
}
