// DynamoDBLocalLoopback starts DynamoDB Local bound to 127.0.0.1 only.
//
// DynamoDB Local has no option to choose the interface it listens on: its
// Jetty server is built with `new Server(port)`, which binds every interface.
// This launcher builds the server exactly as DynamoDBLocal.jar's main does
// (ServerRunner.createServerFromCommandLineArgs, same flags), then sets the
// host of its Jetty connectors to 127.0.0.1 before starting it. Telemetry is
// never set up here (the jar's main would; pass -disableTelemetry anyway).
//
// Run with the Java source launcher (Java 11+), see infra/dynamodb-local.sh:
//
//	java -Djava.library.path=LIB -cp 'DynamoDBLocal.jar:LIB/*' infra/DynamoDBLocalLoopback.java -inMemory -sharedDb -port 8000
import com.amazonaws.services.dynamodbv2.local.main.ServerRunner;
import com.amazonaws.services.dynamodbv2.local.server.DynamoDBProxyServer;
import java.lang.reflect.Field;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;

public class DynamoDBLocalLoopback {
    public static void main(String[] args) throws Exception {
        String host = System.getProperty("ddblocal.host", "127.0.0.1");
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
        Field f = DynamoDBProxyServer.class.getDeclaredField("server");
        f.setAccessible(true);
        Server server = (Server) f.get(proxy);
        int bound = 0;
        for (Connector c : server.getConnectors()) {
            if (c instanceof ServerConnector sc) {
                sc.setHost(host);
                bound++;
            }
        }
        if (bound == 0) {
            throw new IllegalStateException("no Jetty ServerConnector to bind to " + host);
        }
        proxy.start();
        System.out.println("DynamoDB Local listening on " + host);
        proxy.join();
    }
}
