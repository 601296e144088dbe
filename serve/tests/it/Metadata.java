// pgjdbc's DatabaseMetaData as DBeaver calls it on connect and on opening a table (and Tableau's
// and Metabase's JDBC paths): each method's rows, "<method><TAB>row<TAB><v1><TAB>..." (the
// columns the test reads), then "<method><TAB>count<TAB><n>"; or "<method><TAB>error<TAB><why>".
import java.sql.*;
import java.util.function.*;

public class Metadata {
    interface Call { ResultSet run(DatabaseMetaData d) throws SQLException; }

    static void print(DatabaseMetaData d, String method, Call call, String... columns) {
        try (ResultSet rs = call.run(d)) {
            int n = 0;
            while (rs.next()) {
                n++;
                StringBuilder row = new StringBuilder(method).append("\trow");
                for (String c : columns) row.append('\t').append(rs.getString(c));
                if (columns.length > 0) System.out.println(row);
            }
            System.out.println(method + "\tcount\t" + n);
        } catch (SQLException e) {
            System.out.println(method + "\terror\t" + String.valueOf(e.getMessage()).replace('\n', ' '));
        }
    }

    public static void main(String[] a) throws Exception {
        try (Connection c = DriverManager.getConnection(a[0], a[1], a[2])) {
            DatabaseMetaData d = c.getMetaData();
            print(d, "getCatalogs", m -> m.getCatalogs(), "TABLE_CAT");
            print(d, "getSchemas", m -> m.getSchemas(), "TABLE_SCHEM");
            print(d, "getTableTypes", m -> m.getTableTypes(), "TABLE_TYPE");
            print(d, "getTypeInfo", m -> m.getTypeInfo(), "TYPE_NAME", "DATA_TYPE");
            print(d, "getTables", m -> m.getTables(null, "public", "%", null), "TABLE_NAME", "TABLE_TYPE", "REMARKS");
            print(d, "getColumns", m -> m.getColumns(null, "public", "events", "%"), "COLUMN_NAME", "TYPE_NAME", "IS_NULLABLE", "REMARKS");
            print(d, "getPrimaryKeys", m -> m.getPrimaryKeys(null, "public", "events"));
            print(d, "getImportedKeys", m -> m.getImportedKeys(null, "public", "events"));
            print(d, "getExportedKeys", m -> m.getExportedKeys(null, "public", "events"));
            print(d, "getCrossReference", m -> m.getCrossReference(null, "public", "events", null, "public", "sessions"));
            print(d, "getIndexInfo", m -> m.getIndexInfo(null, "public", "events", false, true));
            print(d, "getBestRowIdentifier", m -> m.getBestRowIdentifier(null, "public", "events", DatabaseMetaData.bestRowSession, true));
            print(d, "getVersionColumns", m -> m.getVersionColumns(null, "public", "events"));
            print(d, "getProcedures", m -> m.getProcedures(null, "public", "%"));
            print(d, "getProcedureColumns", m -> m.getProcedureColumns(null, "public", "%", "%"));
            print(d, "getFunctions", m -> m.getFunctions(null, "public", "%"));
            print(d, "getFunctionColumns", m -> m.getFunctionColumns(null, "public", "%", "%"));
            print(d, "getUDTs", m -> m.getUDTs(null, "public", "%", null));
            print(d, "getClientInfoProperties", m -> m.getClientInfoProperties());
        }
    }
}
