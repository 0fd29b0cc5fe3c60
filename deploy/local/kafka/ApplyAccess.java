// Makes the local broker's principals and ACLs exactly what deploy/local/kafka/acls.txt says,
// in one JVM (started by deploy/local/lib/kafka.sh on every platform start):
//   1. every principal named in the file gets a SCRAM-SHA-512 credential whose password is
//      <secrets>/kafka-<principal>.password (upserted: a restart keeps working);
//   2. the broker's ACLs are reconciled with the file: missing bindings are created, bindings
//      the file does not list are deleted. The file is the whole truth for this broker.
// Connects as the admin super user over SASL_SSL. Never prints a password.
//
//   java -cp "<kafka libs>/*" ApplyAccess.java BOOTSTRAP CA_FILE ADMIN_PASSWORD_FILE SECRETS_DIR ACL_FILE
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialAlteration;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

public class ApplyAccess {
  // Kafka's minimum; the credential is salted, so re-upserting the same password is harmless.
  private static final int SCRAM_ITERATIONS = 4096;

  public static void main(String[] args) throws Exception {
    if (args.length != 5) {
      System.err.println("usage: ApplyAccess BOOTSTRAP CA_FILE ADMIN_PASSWORD_FILE SECRETS_DIR ACL_FILE");
      System.exit(2);
    }
    final String bootstrap = args[0];
    final Path caFile = Path.of(args[1]);
    final String adminPassword = secret(Path.of(args[2]));
    final Path secrets = Path.of(args[3]);
    final List<AclBinding> wanted = parse(Path.of(args[4]));

    Properties properties = new Properties();
    properties.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    properties.put("security.protocol", "SASL_SSL");
    properties.put("sasl.mechanism", "SCRAM-SHA-512");
    properties.put("sasl.jaas.config",
        "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\""
            + adminPassword + "\";");
    properties.put("ssl.truststore.type", "PEM");
    properties.put("ssl.truststore.location", caFile.toString());
    properties.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
    properties.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");

    try (Admin admin = Admin.create(properties)) {
      Set<String> principals = new LinkedHashSet<>();
      for (AclBinding binding : wanted) principals.add(binding.entry().principal().substring("User:".length()));
      List<UserScramCredentialAlteration> users = new ArrayList<>();
      for (String principal : principals) {
        String password = secret(secrets.resolve("kafka-" + principal + ".password"));
        users.add(new UserScramCredentialUpsertion(
            principal, new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS), password));
      }
      admin.alterUserScramCredentials(users).all().get(60, TimeUnit.SECONDS);

      Collection<AclBinding> existing = admin.describeAcls(AclBindingFilter.ANY).values().get(60, TimeUnit.SECONDS);
      Set<AclBinding> missing = new LinkedHashSet<>(wanted);
      missing.removeAll(existing);
      List<AclBindingFilter> extra = new ArrayList<>();
      Set<AclBinding> wantedSet = new HashSet<>(wanted);
      for (AclBinding binding : existing) {
        if (!wantedSet.contains(binding)) extra.add(binding.toFilter());
      }
      if (!extra.isEmpty()) admin.deleteAcls(extra).all().get(60, TimeUnit.SECONDS);
      if (!missing.isEmpty()) admin.createAcls(missing).all().get(60, TimeUnit.SECONDS);
      System.err.printf("[platform] kafka principals: %d SCRAM users upserted; ACLs: %d kept, %d created, %d deleted%n",
          users.size(), wanted.size() - missing.size(), missing.size(), extra.size());
    }
  }

  // A password file's content without trailing whitespace (the files end with a newline).
  private static String secret(Path file) throws IOException {
    String value = Files.readString(file, StandardCharsets.UTF_8).strip();
    if (value.isEmpty()) throw new IOException("empty secret file " + file);
    return value;
  }

  // Lines: PRINCIPAL RESOURCE_TYPE PATTERN_TYPE NAME OPERATION[,OPERATION...]; '#' comments.
  // Every binding allows, from any host.
  static List<AclBinding> parse(Path file) throws IOException {
    List<AclBinding> bindings = new ArrayList<>();
    int number = 0;
    for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
      number++;
      String text = line.replaceAll("#.*", "").strip();
      if (text.isEmpty()) continue;
      String[] fields = text.split("\\s+");
      if (fields.length != 5) throw new IOException(file + ":" + number + ": want 5 fields");
      ResourcePattern pattern = new ResourcePattern(
          ResourceType.valueOf(fields[1]), fields[3], PatternType.valueOf(fields[2]));
      for (String operation : fields[4].split(",")) {
        bindings.add(new AclBinding(pattern, new AccessControlEntry(
            "User:" + fields[0], "*", AclOperation.valueOf(operation), AclPermissionType.ALLOW)));
      }
    }
    return bindings;
  }
}
