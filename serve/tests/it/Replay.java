// Replays statements through pgjdbc as a Java BI tool (Metabase, DBeaver, Tableau's JDBC
// driver) sends them: each one prepared, its parameters bound as strings. Reads blocks from
// standard input:
//   SQL
//   <statement, any number of lines>
//   PARAM
//   <one parameter: int:<n>, or its text>      (as many PARAM blocks as it has)
//   END
// and prints, per statement, "done<TAB><update count>" for one without rows, or
// "rows<TAB><count>" then "row<TAB><v1><TAB><v2>..." (null as \N),
// or "error<TAB><SQLSTATE><TAB><message>".
import java.io.*;
import java.sql.*;
import java.util.*;

public class Replay {
    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, "UTF-8"));
        try (Connection c = DriverManager.getConnection(args[0], args[1], args[2])) {
            String line, mode = null;
            StringBuilder sql = new StringBuilder();
            List<String> params = new ArrayList<>();
            while ((line = in.readLine()) != null) {
                if (line.equals("SQL") || line.equals("PARAM")) { mode = line; continue; }
                if (line.equals("END")) {
                    run(c, sql.toString(), params);
                    sql.setLength(0);
                    params.clear();
                    mode = null;
                    continue;
                }
                if ("SQL".equals(mode)) sql.append(line).append('\n');
                else if ("PARAM".equals(mode)) params.add(line);
            }
        }
    }

    static void run(Connection c, String sql, List<String> params) {
        try (PreparedStatement s = c.prepareStatement(sql)) {
            for (int i = 0; i < params.size(); i++) {
                String p = params.get(i);
                if (p.startsWith("int:")) s.setLong(i + 1, Long.parseLong(p.substring(4)));
                else s.setString(i + 1, p);
            }
            if (!s.execute()) {
                System.out.println("done\t" + s.getUpdateCount());
                return;
            }
            try (ResultSet rs = s.getResultSet()) {
                int n = rs.getMetaData().getColumnCount(), rows = 0;
                StringBuilder out = new StringBuilder();
                while (rs.next()) {
                    rows++;
                    out.append("row");
                    for (int i = 1; i <= n; i++) {
                        String v = rs.getString(i);
                        out.append('\t').append(v == null ? "\\N" : v.replace('\t', ' ').replace('\n', ' '));
                    }
                    out.append('\n');
                }
                System.out.print("rows\t" + rows + "\n" + out);
            }
        } catch (SQLException e) {
            System.out.println("error\t" + e.getSQLState() + "\t" + String.valueOf(e.getMessage()).replace('\n', ' '));
        }
        System.out.flush();
    }
}
