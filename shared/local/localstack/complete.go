package localstack

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// DynamoDBAPI is the part of the DynamoDB client the deployment uses.
type DynamoDBAPI interface {
	UpdateTimeToLive(ctx context.Context, params *dynamodb.UpdateTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
	UpdateContinuousBackups(ctx context.Context, params *dynamodb.UpdateContinuousBackupsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateContinuousBackupsOutput, error)
}

// S3SettingsAPI is the part of the S3 client that applies bucket settings.
type S3SettingsAPI interface {
	PutBucketVersioning(ctx context.Context, params *s3.PutBucketVersioningInput, optFns ...func(*s3.Options)) (*s3.PutBucketVersioningOutput, error)
	PutPublicAccessBlock(ctx context.Context, params *s3.PutPublicAccessBlockInput, optFns ...func(*s3.Options)) (*s3.PutPublicAccessBlockOutput, error)
	PutBucketLifecycleConfiguration(ctx context.Context, params *s3.PutBucketLifecycleConfigurationInput, optFns ...func(*s3.Options)) (*s3.PutBucketLifecycleConfigurationOutput, error)
	PutBucketOwnershipControls(ctx context.Context, params *s3.PutBucketOwnershipControlsInput, optFns ...func(*s3.Options)) (*s3.PutBucketOwnershipControlsOutput, error)
	PutObjectLockConfiguration(ctx context.Context, params *s3.PutObjectLockConfigurationInput, optFns ...func(*s3.Options)) (*s3.PutObjectLockConfigurationOutput, error)
}

var (
	_ DynamoDBAPI   = (*dynamodb.Client)(nil)
	_ S3SettingsAPI = (*s3.Client)(nil)
)

// completions lists, per resource type, the template properties moto's CloudFormation ignores (moto 5.2: a table's
// TTL and point-in-time recovery; a bucket's versioning, public access block, lifecycle, ownership controls and
// Object Lock). The deployer applies them through the service APIs, in this order (Object Lock needs versioning),
// so the local resources have the template's settings. Their intrinsics (e.g. a retention parameter) are evaluated
// by moto as outputs of the stack.
//
// A symmetric KMS key (the alarm topic's) is in the stack, but moto 5.2 keeps its KeyPolicy as the template's object
// instead of JSON and then answers every call that checks the policy (DescribeKey, ...) with an error 500: the
// deployer puts the same policy again, as JSON.
var completions = map[string][]string{
	"AWS::KMS::Key":        {"KeyPolicy"},
	"AWS::DynamoDB::Table": {"TimeToLiveSpecification", "PointInTimeRecoverySpecification"},
	"AWS::S3::Bucket": {"VersioningConfiguration", "PublicAccessBlockConfiguration", "LifecycleConfiguration", "OwnershipControls",
		"ObjectLockConfiguration"},
}

// complete applies the properties of the in-stack resources that moto's CloudFormation ignored; outputs are the
// stack's, which fill the intrinsics of those properties.
func complete(ctx context.Context, c Clients, plan *Plan, physical, outputs map[string]string) ([]string, error) {
	var done []string
	for _, id := range sortedKeys(plan.completeProps) {
		if plan.Disposition[id] != InStack || physical[id] == "" && conditionalOff(plan, id) {
			continue // not in the stack, or its condition left it out (AlarmKey without AlarmEmail)
		}
		props := plan.completeProps[id]
		for _, name := range completions[plan.Types[id]] {
			raw, ok := props[name]
			if !ok {
				continue
			}
			v, err := plan.fill(raw, outputs)
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", id, name, err)
			}
			if err := completeOne(ctx, c, physical[id], name, v); err != nil {
				return nil, fmt.Errorf("%s.%s: %w", id, name, err)
			}
			done = append(done, id+"."+name)
		}
	}
	return done, nil
}

func completeOne(ctx context.Context, c Clients, physicalID, name string, v any) error {
	m, _ := v.(map[string]any)
	str := func(k string) string { s, _ := m[k].(string); return s }
	boolean := func(k string) *bool { b, _ := m[k].(bool); return aws.Bool(b) }
	var err error
	switch name {
	case "KeyPolicy":
		doc, merr := json.Marshal(v)
		if merr != nil {
			return fmt.Errorf("encode key policy: %w", merr)
		}
		_, err = c.KMS.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(physicalID), PolicyName: aws.String("default"),
			Policy: aws.String(string(doc))})
	case "TimeToLiveSpecification":
		_, err = c.DynamoDB.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
			TableName:               aws.String(physicalID),
			TimeToLiveSpecification: &ddbtypes.TimeToLiveSpecification{AttributeName: aws.String(str("AttributeName")), Enabled: boolean("Enabled")},
		})
	case "PointInTimeRecoverySpecification":
		_, err = c.DynamoDB.UpdateContinuousBackups(ctx, &dynamodb.UpdateContinuousBackupsInput{
			TableName:                        aws.String(physicalID),
			PointInTimeRecoverySpecification: &ddbtypes.PointInTimeRecoverySpecification{PointInTimeRecoveryEnabled: boolean("PointInTimeRecoveryEnabled")},
		})
	case "VersioningConfiguration":
		_, err = c.S3Settings.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{
			Bucket:                  aws.String(physicalID),
			VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatus(str("Status"))},
		})
	case "PublicAccessBlockConfiguration":
		_, err = c.S3Settings.PutPublicAccessBlock(ctx, &s3.PutPublicAccessBlockInput{
			Bucket: aws.String(physicalID),
			PublicAccessBlockConfiguration: &s3types.PublicAccessBlockConfiguration{
				BlockPublicAcls: boolean("BlockPublicAcls"), BlockPublicPolicy: boolean("BlockPublicPolicy"),
				IgnorePublicAcls: boolean("IgnorePublicAcls"), RestrictPublicBuckets: boolean("RestrictPublicBuckets"),
			},
		})
	case "OwnershipControls":
		var rules []s3types.OwnershipControlsRule
		for _, r := range list(m["Rules"]) {
			s, _ := r["ObjectOwnership"].(string)
			rules = append(rules, s3types.OwnershipControlsRule{ObjectOwnership: s3types.ObjectOwnership(s)})
		}
		_, err = c.S3Settings.PutBucketOwnershipControls(ctx, &s3.PutBucketOwnershipControlsInput{
			Bucket: aws.String(physicalID), OwnershipControls: &s3types.OwnershipControls{Rules: rules},
		})
	case "ObjectLockConfiguration":
		// On a versioned bucket this also turns Object Lock on, which moto's CloudFormation ignores in
		// ObjectLockEnabled (as S3 does for existing buckets).
		lock := &s3types.ObjectLockConfiguration{ObjectLockEnabled: s3types.ObjectLockEnabled(str("ObjectLockEnabled"))}
		if rule, ok := m["Rule"].(map[string]any); ok {
			dr, _ := rule["DefaultRetention"].(map[string]any)
			mode, _ := dr["Mode"].(string)
			ret := &s3types.DefaultRetention{Mode: s3types.ObjectLockRetentionMode(mode)}
			for k, dst := range map[string]**int32{"Days": &ret.Days, "Years": &ret.Years} {
				if v, ok := dr[k]; ok {
					n, cerr := positiveInt32(v)
					if cerr != nil {
						return fmt.Errorf("DefaultRetention.%s: %w", k, cerr)
					}
					*dst = aws.Int32(n)
				}
			}
			lock.Rule = &s3types.ObjectLockRule{DefaultRetention: ret}
		}
		_, err = c.S3Settings.PutObjectLockConfiguration(ctx, &s3.PutObjectLockConfigurationInput{
			Bucket: aws.String(physicalID), ObjectLockConfiguration: lock,
		})
	case "LifecycleConfiguration":
		var rules []s3types.LifecycleRule
		for _, r := range list(m["Rules"]) {
			rule, cerr := lifecycleRule(r)
			if cerr != nil {
				return cerr
			}
			rules = append(rules, rule)
		}
		_, err = c.S3Settings.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{
			Bucket: aws.String(physicalID), LifecycleConfiguration: &s3types.BucketLifecycleConfiguration{Rules: rules},
		})
	}
	return err
}

// lifecycleRule converts the CloudFormation form of a lifecycle rule to the API's. Fields it does not know are an
// error, so a template change the local stack cannot reproduce is noticed.
func lifecycleRule(r map[string]any) (s3types.LifecycleRule, error) {
	out := s3types.LifecycleRule{Filter: &s3types.LifecycleRuleFilter{Prefix: aws.String("")}}
	for _, k := range sortedKeys(r) {
		v := r[k]
		sub, _ := v.(map[string]any)
		switch k {
		case "Id":
			out.ID = aws.String(fmt.Sprint(v))
		case "Status":
			out.Status = s3types.ExpirationStatus(fmt.Sprint(v))
		case "Prefix":
			out.Filter = &s3types.LifecycleRuleFilter{Prefix: aws.String(fmt.Sprint(v))}
		case "ExpirationInDays":
			out.Expiration = &s3types.LifecycleExpiration{Days: aws.Int32(toInt32(v))}
		case "NoncurrentVersionExpiration":
			out.NoncurrentVersionExpiration = &s3types.NoncurrentVersionExpiration{NoncurrentDays: aws.Int32(toInt32(sub["NoncurrentDays"]))}
		case "AbortIncompleteMultipartUpload":
			out.AbortIncompleteMultipartUpload = &s3types.AbortIncompleteMultipartUpload{DaysAfterInitiation: aws.Int32(toInt32(sub["DaysAfterInitiation"]))}
		case "Transitions":
			for _, t := range list(v) {
				s, _ := t["StorageClass"].(string)
				out.Transitions = append(out.Transitions, s3types.Transition{StorageClass: s3types.TransitionStorageClass(s), Days: aws.Int32(toInt32(t["TransitionInDays"]))})
			}
		default:
			return out, fmt.Errorf("lifecycle rule field %s has no local equivalent yet (cmd/localstack/complete.go)", k)
		}
	}
	return out, nil
}

func list(v any) []map[string]any {
	l, _ := v.([]any)
	out := make([]map[string]any, 0, len(l))
	for _, e := range l {
		if m, ok := e.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// positiveInt32 reads a count the template writes as a number or, once moto has evaluated a parameter, a string.
func positiveInt32(v any) (int32, error) {
	n := toInt32(v)
	if s, ok := v.(string); ok {
		i, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return 0, fmt.Errorf("%q is not a number", s)
		}
		n = int32(i)
	}
	if n <= 0 {
		return 0, fmt.Errorf("%v is not a positive number", v)
	}
	return n, nil
}

func toInt32(v any) int32 {
	switch x := v.(type) {
	case int:
		return int32(x)
	case float64:
		return int32(x)
	}
	return 0
}
